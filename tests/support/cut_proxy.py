"""A TCP proxy in front of PostgreSQL that loses one statement's reply after it committed."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

# PostgreSQL's ReadyForQuery message ('Z', length 5): the server is done with the statement,
# its implicit transaction committed (or rolled back).
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


class CutAfterCommit:
    """Forwards every connection; the first statement whose text holds `marker` is executed
    by PostgreSQL, but its client's connection is cut the moment the server starts answering.

    asyncpg prepares a statement (Parse, whose text has the marker) and then executes it
    (Bind ...): the cut waits for that Bind. The server's side is read until ReadyForQuery
    before it closes, so the statement has finished (committed) when the client has lost it.
    """

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
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
                    elif saw_marker and data[:1] == b"B":
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
    upstream_port: int, marker: bytes
) -> AsyncIterator[tuple[int, CutAfterCommit]]:
    """Serve a CutAfterCommit proxy on 127.0.0.1; yields its port and the proxy."""
    proxy = CutAfterCommit(upstream_port, marker)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], proxy
    finally:
        server.close()
        await server.wait_closed()
