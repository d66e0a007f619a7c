"""amlops: an Azure Machine Learning MLOps accelerator — one pipeline YAML, run locally or on Azure ML."""

import logging as _logging

__version__ = "0.1.0"

# azure-ai-ml prints an "experimental class" notice for every schema it touches; they are not actionable here.
_logging.getLogger("azure.ai.ml._utils._experimental").setLevel(_logging.ERROR)
