"""amlops: an Azure Machine Learning MLOps accelerator — one pipeline YAML, run locally or on Azure ML."""

import logging as _logging

__version__ = "0.1.0"

# azure-ai-ml prints an "experimental class" notice for every schema it touches; they are not actionable here.
_logging.getLogger("azure.ai.ml._utils._experimental").setLevel(_logging.ERROR)
# Components share one environment file that carries a name for `az ml environment create`; referenced from a
# component it is anonymous, and the SDK warns that the name is unused — expected, so not shown.
for _name in ("azure.ai.ml._schema.assets.environment", "azure.ai.ml._schema.assets.asset"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)
