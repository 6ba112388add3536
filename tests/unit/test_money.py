from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from app.money import Amount


class Body(BaseModel):
    amount: Amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.50", "10.50"),
        ("1", "1.00"),
        (7, "7.00"),
        (0.1, "0.10"),
        ("0.01", "0.01"),
        ("1000000000000000", "1000000000000000.00"),
        (12.34, "12.34"),
    ],
)
def test_valid_amounts_parse_exactly(raw: object, expected: str) -> None:
    body = Body.model_validate({"amount": raw})
    assert body.amount == Decimal(expected)
    assert body.model_dump(mode="json") == {"amount": expected}


@pytest.mark.parametrize(
    "raw",
    [
        "-1",
        "0",
        "0.00",
        "1.001",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "1e400",
        "1e2",
        "1,00",
        "",
        " 1",
        "1 ",
        "+1",
        ".5",
        "1.",
        "0x10",
        "1000000000000000.01",
        None,
        True,
        False,
        [1],
        {"v": 1},
        -1,
        0,
        1.001,
        float("nan"),
        float("inf"),
        1e400,
        Decimal("NaN"),
    ],
)
def test_invalid_amounts_are_refused(raw: object) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate({"amount": raw})


def test_json_numbers_are_read_as_written() -> None:
    assert Body.model_validate_json('{"amount": 19.99}').amount == Decimal("19.99")
    with pytest.raises(ValidationError):
        Body.model_validate_json('{"amount": 1e400}')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("90071992547409.99"), "90071992547409.99"),
        (Decimal("10.5"), "10.50"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("1000000000000000"), "1000000000000000.00"),
    ],
)
def test_exactly_decoded_json_numbers_keep_every_digit(raw: Decimal, expected: str) -> None:
    assert Body.model_validate({"amount": raw}).amount == Decimal(expected)


@pytest.mark.parametrize(
    "raw",
    [
        Decimal("1.001"),
        Decimal("10.500"),
        Decimal("1E+999999999"),
        Decimal("1E-999999999"),
        Decimal("Infinity"),
        Decimal("1000000000000000.01"),
    ],
)
def test_exactly_decoded_json_numbers_out_of_shape_are_refused(raw: Decimal) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate({"amount": raw})
