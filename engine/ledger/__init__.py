"""The DuckDB store (data, rulesets), the ledger of committed orders, and its snapshot for quotes."""
