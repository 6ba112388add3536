"""Real HTTP servers inside the test process: an ASGI app under uvicorn, or a black hole."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from app.dev.embedded.process import free_port


@asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 with uvicorn; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class BlackHole:
    """Accepts connections and never answers: a settlement that hangs."""

    url: str
    connections: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)


@asynccontextmanager
async def black_hole() -> AsyncIterator[BlackHole]:
    port = free_port()
    hole = BlackHole(url=f"http://127.0.0.1:{port}/api/settlement/withdraw")

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hole.connections += 1
        hole.connected.set()
        hole._writers.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", port)
    try:
        yield hole
    finally:
        for writer in hole._writers:
            writer.close()
        server.close()
        await server.wait_closed()
