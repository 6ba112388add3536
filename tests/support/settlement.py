"""Payout orders as the core sends them to settlement."""

import uuid
from typing import Any

WITHDRAW = "/api/settlement/withdraw"


def new_order(**overrides: Any) -> dict[str, Any]:
    return {
        "withdrawal_id": str(uuid.uuid4()),
        "merchant_id": 1,
        "account_id": str(uuid.uuid4()),
        "amount": "10.00",
        "account": "DE89370400440532013000",
        **overrides,
    }
