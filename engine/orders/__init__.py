"""Order validation (SPEC §5) and what a committed order consumes."""
