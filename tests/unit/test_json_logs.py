import json
import logging

from app.observability.logging import JsonFormatter, current_request_id


def _format(record: logging.LogRecord) -> dict[str, object]:
    return dict(json.loads(JsonFormatter().format(record)))


def _record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, msg, args or ("x",), None)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_the_extra_fields() -> None:
    line = _format(_record(status=201, path="/api/v1/x"))
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", "app.test", "hello x")
    assert (line["status"], line["path"]) == (201, "/api/v1/x")
    assert "request_id" not in line
    assert str(line["ts"]).endswith("+00:00")


def test_the_current_request_id_tags_every_line() -> None:
    token = current_request_id.set("req-1")
    try:
        assert _format(_record())["request_id"] == "req-1"
        # An explicit id (the server error handler passes one) wins over the context.
        assert _format(_record(request_id="req-2"))["request_id"] == "req-2"
    finally:
        current_request_id.reset(token)


def test_exceptions_are_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "app.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    formatted = JsonFormatter().format(record)
    assert "\n" not in formatted
    assert "ValueError: boom" in json.loads(formatted)["exc"]
