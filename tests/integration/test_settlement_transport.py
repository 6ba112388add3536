"""The api's client for settlement fails like httpx's own client, so every failure is UNKNOWN.

Each broken settlement is a raw socket server on 127.0.0.1; the client under test is the one
the api builds (SettlementHTTP over aiohttp), compared with httpx.AsyncClient and its default
transport (httpcore).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from app.config import Settings
from app.dev.embedded.process import free_port
from app.withdrawals import settlement_client
from app.withdrawals.settlement_client import Outcome, create_http_client
from app.withdrawals.settlement_http import SettlementHTTP
from tests.support.settlement import processing_withdrawal

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT_S = 0.3
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that runs `handler` per connection; yields its URL."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/settlement/withdraw"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def settlement_at(handler: Handler | None) -> AsyncIterator[str]:
    """A broken settlement's URL: `handler` serves it, or None for nothing listening."""
    if handler is None:
        yield f"http://127.0.0.1:{free_port()}/api/settlement/withdraw"
        return
    async with raw_server(handler) as url:
        yield url


async def never_answers(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up and closes


async def closes_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def answers_not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    await reader.read()


async def answers_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.readuntil(b"\r\n\r\n"):
        await reader.readexactly(2)  # the body below, '{}'
        writer.write(OK)
        await writer.drain()


async def trickles_a_paid_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A whole, valid answer, one byte at a time: each read is quick, the answer is not."""
    await reader.readuntil(b"\r\n\r\n")
    for byte in OK:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(TIMEOUT_S / 3)
    await reader.read()


def api_client() -> SettlementHTTP:
    return create_http_client(Settings(ENVIRONMENT="test", SETTLEMENT_TIMEOUT_S=TIMEOUT_S))


async def failure(client: SettlementHTTP | httpx.AsyncClient, url: str) -> BaseException:
    async with client:
        with pytest.raises(Exception) as caught:
            await client.post(url, json={}, headers={})
    return caught.value


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (None, httpx.ConnectError),
        (never_answers, httpx.ReadTimeout),
        (closes_without_answer, httpx.RemoteProtocolError),
        (answers_not_http, httpx.RemoteProtocolError),
    ],
    ids=["down", "hanging", "closes-without-answer", "not-http"],
)
async def test_a_broken_settlement_raises_the_httpx_error_httpcore_raises(
    handler: Handler | None, expected: type[httpx.TransportError]
) -> None:
    async with settlement_at(handler) as url:
        ours = await failure(api_client(), url)
        httpcore = await failure(httpx.AsyncClient(timeout=TIMEOUT_S), url)
    assert type(httpcore) is expected
    assert type(ours) is expected


async def test_calls_reuse_one_kept_alive_connection() -> None:
    connections = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await answers_ok(reader, writer)

    async with raw_server(counting) as url, api_client() as client:
        for _ in range(3):
            response = await client.post(url, json={}, headers={})
            assert (response.status_code, response.content) == (200, b"ok")
    assert connections == 1


@pytest.mark.parametrize("handler", [never_answers, closes_without_answer, answers_not_http])
async def test_pay_answers_unknown_whatever_breaks(handler: Handler) -> None:
    withdrawal = processing_withdrawal()
    async with raw_server(handler) as url, api_client() as client:
        settings = Settings(ENVIRONMENT="test", SETTLEMENT_URL=url)
        answer = await settlement_client.pay(client, settings, withdrawal)
    assert answer.outcome == Outcome.UNKNOWN


async def test_an_answer_slower_than_the_deadline_is_a_timeout_though_no_read_stalls() -> None:
    # Per-phase timeouts would wait 3 x TIMEOUT_S here (every byte comes within one) and
    # return the 200; the call's one deadline gives up first.
    async with raw_server(trickles_a_paid_answer) as url:
        ours = await failure(api_client(), url)
    assert isinstance(ours, httpx.TimeoutException)
