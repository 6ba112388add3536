"""Request JSON decoded exactly: a JSON number becomes the Decimal the client wrote.

json.loads would turn 90071992547409.99 into the nearest float, ...409.98 once printed; no
later check can tell what was sent. Every core router that takes a JSON body uses
ExactJSONRoute (tests/unit/test_exact_json.py checks that none is left out).
"""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class ExactJSONRoute(APIRoute):
    """An APIRoute whose body numbers are Decimals (integers stay int)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact_json_handler
