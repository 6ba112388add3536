"""The settlement hop's HTTP transport: aiohttp on the wire, httpx's errors and timeouts on top.

httpx-aiohttp sends httpx requests through aiohttp's pooled ClientSession, whose C HTTP parser
costs the api less CPU per call than httpcore. Its timeouts follow httpx's: connect -> aiohttp
sock_connect, read -> sock_read (from the end of the request until the answer, reset by each
byte received), pool -> connect (waiting for a pooled connection plus opening it). aiohttp has
no write timeout; the request is one small JSON body that fits the socket's send buffer, so
writing it never waits on settlement, and the read timeout still bounds a settlement that hangs.

Its error mapping is loose where the settlement client cares: a refused connection and a
server that closes without answering both come out as httpx.ConnectTimeout (a timeout in the
metrics, and a claim that the request was never sent), and a response that is not HTTP
escapes as a raw aiohttp error that no `except httpx.HTTPError` catches. AiohttpTransport
below maps them as httpcore would. Errors while reading the body come from the library's own
stream, already as httpx errors; they end a call after the timing transport saw its headers.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import httpx_aiohttp

# Most specific first: the first match wins.
_ERRORS: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # not sent
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),  # sent, no answer in time
    (aiohttp.ServerTimeoutError, httpx.TimeoutException),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unreachable: not sent
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # maybe received
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # the answer is not HTTP
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),  # reset, closed while sending
)


def _remapped(exc: aiohttp.ClientError) -> type[httpx.TransportError] | None:
    return next((kind for cause, kind in _ERRORS if isinstance(exc, cause)), None)


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        # Already an httpx error: keep it unless its aiohttp cause says what it really was.
        cause = exc.__cause__
        kind = _remapped(cause) if isinstance(cause, aiohttp.ClientError) else None
        if kind is None:
            raise
        raise kind(str(cause), request=request) from cause
    except aiohttp.ClientError as exc:
        kind = _remapped(exc) or httpx.TransportError
        raise kind(str(exc) or type(exc).__name__, request=request) from exc


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx-aiohttp's transport whose every failure is the httpx error httpcore would raise."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors(request):
            return await super().handle_async_request(request)
