"""Yardstick (b): the least a FastAPI POST can do, served like the api in the bench.

The same path as a withdrawal, a pydantic body and a JSON answer; no database, no auth, no
middleware. The product's completed/s divided by this app's requests/s (same uvicorn layout,
same Locust settings) says how much of the web stack's ceiling the product turns into
withdrawals. Never changed with the product.
"""

from decimal import Decimal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict


class WithdrawalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal


app = FastAPI()


@app.post("/api/v1/withdrawals")
async def withdraw(body: WithdrawalBody) -> dict[str, str]:
    return {"status": "SUCCESS", "amount": str(body.amount)}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """For the harness: it starts the load once the workers answer."""
    return {"status": "ok"}
