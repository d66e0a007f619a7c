"""Pipeline steps: one module per component, each a plain function plus a thin `python -m` entry."""
