"""The double-entry ledger and the pool it funds: top-ups, balances and the pool row."""
