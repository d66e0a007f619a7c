"""amlops."""
