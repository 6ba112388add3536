"""GET /metrics on both apps (Prometheus text format)."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.observability.gauges import Probe
from app.observability.metrics import exposition

router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Counters and histograms of this app (all workers), plus gauges read at scrape time."""
    probes: list[Probe] = getattr(request.app.state, "metric_probes", [])
    scraped = [family for probe in probes for family in await probe(request)]
    return Response(exposition(scraped), media_type=CONTENT_TYPE_LATEST)
