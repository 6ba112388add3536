"""Money on the wire: exact decimal amounts with at most two places, serialised as strings."""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 15
# The largest NUMERIC(18, 2), every money column's type: no balance may ever exceed it.
COLUMN_MAX = Decimal("9999999999999999.99")
# Plain digits with an optional 1-2 digit fraction, from 0.01 to 10^15: no sign, exponent,
# spaces, separators or leading zeros. The document's pattern is this one, so that any text
# it allows is accepted and any other refused.
_AMOUNT_TEXT = re.compile(
    r"^(?:[1-9][0-9]{0,14}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?)|1000000000000000(?:\.00?)?)$"
)


def parse_amount(value: Any) -> Decimal:
    """A positive amount of at most 2 places and at most 10^15, from a string or JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('amount must be a decimal string such as "10.50"')
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, i.e. what the client wrote.
        text = repr(value)
    elif isinstance(value, Decimal):
        # A JSON number decoded exactly (app.jsonbody); the exponent is checked before
        # printing it in full, so 1e999999999 costs nothing.
        exact = value.is_finite() and -2 <= int(value.as_tuple().exponent) and value.adjusted() < 16
        text = format(value, "f") if exact else "nan"
    else:
        text = str(value)
    if not _AMOUNT_TEXT.match(text):
        raise ValueError(
            'amount must be a plain decimal from 0.01 to 10^15 with at most 2 places, like "10.50"'
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValueError("amount is not a decimal") from None
    return amount.quantize(CENT)


def format_amount(amount: Decimal) -> str:
    return f"{amount.quantize(CENT):f}"


_SCHEMA = {
    "type": "string",
    "pattern": _AMOUNT_TEXT.pattern,
    "examples": ["10.50"],
    "description": "Decimal string from 0.01 to 10^15 with at most 2 places and no leading "
    "zeros (a JSON number that is exactly such a decimal is also accepted on input).",
}

# Input and output amount: Decimal inside, "12.34" outside.
Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema(_SCHEMA),
]

# Output-only amount (may be zero, e.g. utilized credit).
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["0.00"]}),
]
