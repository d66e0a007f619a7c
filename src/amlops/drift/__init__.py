"""Drift monitoring: the reference profile (built at training time), streaming metrics and the report.

- `amlops.drift.profile`: `build_profile(df, numeric, categorical)` -> `ReferenceProfile` (JSON, merge)
- `amlops.drift.monitor`: `run_monitor(current, profile, options)` -> `MonitorResult` (see docs/monitor.md)
- `amlops.drift.result`: `MonitorResult`, the typed result.json (`MonitorResult.read(path)`, `.write(path)`)
- `amlops.drift.report`: `render_html(result)` -> self-contained HTML
- `amlops.drift.metrics`: the metric registry (Azure ML model monitoring's names and default thresholds) and
  the metrics themselves

Submodules import pandas / pyarrow; import them where needed (the CLI's top level must stay light).
"""
