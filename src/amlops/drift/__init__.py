"""Drift monitoring: the reference profile (built at training time), streaming metrics and the report.

- `amlops.drift.profile`: `build_profile(df, numeric, categorical)` -> `ReferenceProfile` (JSON, merge)
- `amlops.drift.monitor`: `run_monitor(current, profile, options)` -> result dict (see docs/monitor.md)
- `amlops.drift.report`: `render_html(result)` -> self-contained HTML
- `amlops.drift.metrics`: metric definitions with Azure ML model monitoring's names and default thresholds

Submodules import pandas / pyarrow; import them where needed (the CLI's top level must stay light).
"""
