"""A TCP proxy in front of PostgreSQL that loses one statement's reply after it committed."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

# PostgreSQL's ReadyForQuery message ('Z', length 5): the server is done with the statement,
# its implicit transaction committed (or rolled back).
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"
# What the client sends next to execute it: asyncpg binds a statement it prepared (Bind, 'B'),
# or ends its transaction with a simple query (Query, 'Q', length 12).
EXECUTE = b"B"
COMMIT = b"Q\x00\x00\x00\x0cCOMMIT;"


class CutAfterCommit:
    """Forwards every connection; on the first that sends a statement whose text holds
    `marker`, the next message starting with `then` (EXECUTE: that statement; COMMIT: its
    transaction's end) reaches PostgreSQL, but the client's connection is cut the moment the
    server starts answering it.

    The server's side is read until ReadyForQuery before it closes, so the work has finished
    (committed) when the client has lost its answer.
    """

    def __init__(self, upstream_port: int, marker: bytes, then: bytes = EXECUTE) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.then = then
        self.cut = asyncio.Event()
        self._claimed = False

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        executing = asyncio.Event()

        async def upstream() -> None:
            saw_marker = False
            while data := await client_r.read(65536):
                if not self._claimed:
                    if self.marker in data:
                        saw_marker = True
                    elif saw_marker and data.startswith(self.then):
                        self._claimed = True  # this connection carries the one to lose
                        executing.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if executing.is_set():
                    client_w.transport.abort()
                    while _READY_FOR_QUERY not in data:
                        more = await server_r.read(65536)
                        if not more:
                            break
                        data += more
                    self.cut.set()
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a reset side is expected
        for writer in (client_w, server_w):
            with suppress(ConnectionError):
                writer.close()


@asynccontextmanager
async def cut_after_commit(
    upstream_port: int, marker: bytes, then: bytes = EXECUTE
) -> AsyncIterator[tuple[int, CutAfterCommit]]:
    """Serve a CutAfterCommit proxy on 127.0.0.1; yields its port and the proxy."""
    proxy = CutAfterCommit(upstream_port, marker, then)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], proxy
    finally:
        server.close()
        await server.wait_closed()
