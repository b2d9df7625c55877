"""The shared per-shop Fourthwall quota (5 heavy calls per minute per shop, by default)."""
