from pydantic import BaseModel, ConfigDict, Field

from app.bank_accounts import BankAccount
from app.money import Amount

# 1-64 characters: the seed's m1 .. m1000 (and its README walkthrough) work as written.
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(StrictModel):
    username: str = Field(pattern=USERNAME_PATTERN, examples=["acme_shop"])
    # The minimum length is a setting (Settings.password_min_length), checked by the service.
    password: str = Field(min_length=1, max_length=256)
    requested_credit: Amount
    bank_account: BankAccount = Field(examples=["DE89370400440532013000"])


class RegisterOut(BaseModel):
    merchant_id: int
    status: str


class TokenIn(StrictModel):
    # No NUL: PostgreSQL text cannot hold one, so the lookup would fail with a 500.
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(StrictModel):
    refresh: str = Field(min_length=1, max_length=4096)


class TokenOut(BaseModel):
    access: str
    refresh: str
    access_token: str
    token_type: str = "bearer"
    expires_in: int
