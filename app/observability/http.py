"""An httpx transport that times every call to settlement for creditpool_settlement_* metrics."""

import time

import httpx

from app.observability.metrics import SETTLEMENT_LATENCY


class SettlementTimingTransport(httpx.AsyncBaseTransport):
    """Times each request until its response headers, labelled by status or error type.

    A transport rather than code in the settlement client: every call made through the
    pooled client is measured, whichever code path makes it.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        status = "error"
        try:
            response = await self.inner.handle_async_request(request)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException:
            status = "timeout"
            raise
        finally:
            SETTLEMENT_LATENCY.labels(request.method, status).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()
