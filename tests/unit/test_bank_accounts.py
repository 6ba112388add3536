"""One bank-account rule: what the core accepts at registration, settlement accepts in an order."""

import uuid

import pytest
from pydantic import ValidationError

from app.auth.schemas import RegisterIn
from app.settlement.schemas import WithdrawRequest

ACCOUNTS = [
    ("DE89370400440532013000", True),
    ("GB29NWBK60161331926819", True),
    ("IRREJECT0001", True),
    ("A" * 34, True),
    ("ABCD", False),  # too short
    ("A" * 35, False),  # longer than the column
    ("de89370400440532013000", False),  # lower case
    ("DE89 3704 0044", False),  # spaces
    ("DE89-3704", False),
]


def _registration_accepts(account: str) -> bool:
    body = {"username": "acme", "password": "p", "requested_credit": "1.00"}
    try:
        RegisterIn.model_validate(body | {"bank_account": account})
    except ValidationError:
        return False
    return True


def _settlement_accepts(account: str) -> bool:
    order = {
        "withdrawal_id": str(uuid.uuid4()),
        "merchant_id": 1,
        "account_id": str(uuid.uuid4()),
        "amount": "1.00",
    }
    try:
        WithdrawRequest.model_validate(order | {"account": account})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("account", "valid"), ACCOUNTS)
def test_registration_and_settlement_agree_on_every_account(account: str, valid: bool) -> None:
    assert _registration_accepts(account) is valid
    assert _settlement_accepts(account) is valid
