"""Batch jobs over order history: rebates, commissions, tiers and funds, rebate runs, what-if."""
