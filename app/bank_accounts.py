"""The one bank-account rule: the core checks it at registration, settlement on every order."""

from typing import Annotated

from pydantic import StringConstraints

# IBAN-like, as the core stores it (merchants.bank_account is VARCHAR(34)): upper-case letters
# and digits. One rule for both apps, so settlement never refuses an account the core took.
BANK_ACCOUNT_PATTERN = r"^[A-Z0-9]{5,34}$"
BankAccount = Annotated[str, StringConstraints(pattern=BANK_ACCOUNT_PATTERN)]
