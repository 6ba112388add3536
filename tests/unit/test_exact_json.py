"""Every core route with a body decodes JSON numbers as the exact decimals written."""

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from app.jsonbody import ExactJSONRoute
from app.main import create_app


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _api_routes(included.routes)


def test_every_route_with_a_body_decodes_json_exactly() -> None:
    with_body = [r for r in _api_routes(create_app().routes) if r.body_field is not None]
    assert {r.path for r in with_body} >= {"/api/v1/withdrawals", "/api/v1/admin/pool/topup"}
    assert [r.path for r in with_body if not isinstance(r, ExactJSONRoute)] == []
