"""The pricing waterfall (``pipeline``) and one module per stage of SPEC §3."""
