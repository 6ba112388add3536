import httpx


async def test_unknown_path_is_a_problem_with_a_code(api: httpx.AsyncClient) -> None:
    response = await api.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert body["status"] == 404
    assert body["code"] == "NOT_FOUND"


async def test_wrong_method_is_a_problem(settlement_api: httpx.AsyncClient) -> None:
    response = await settlement_api.post("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_request_id_is_echoed_when_sane(api: httpx.AsyncClient) -> None:
    response = await api.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def test_insane_request_id_is_replaced(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces" * 20})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert " " not in request_id


async def test_announced_oversized_body_gets_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/healthz", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
