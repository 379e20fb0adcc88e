"""Priced lines out: JSON responses with explanations and near misses, and priced frames."""
