"""Run AML CLI v2 pipeline YAML: `local` executes it on this machine; `amlops.azure.jobs` submits it to Azure ML."""
