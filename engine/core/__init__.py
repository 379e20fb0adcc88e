"""What every stage stands on: exact money and rounding, allocation, decimal columns, the input data."""
