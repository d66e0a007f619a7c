"""An MLflow client that refuses what Azure ML's MLflow endpoint refuses, over a local SQLite store.

What AML supports comes from Microsoft's support matrices:
- models: https://learn.microsoft.com/azure/machine-learning/how-to-manage-models-mlflow ("Review supported
  capabilities for managing models"): registered models are immutable (footnote 3: no rename, no delete, and
  so no registered-model tags or description edits); model *version* tags and descriptions can be edited;
  search by name only (no LIKE/ILIKE, no search by tag). Aliases are not in the matrix.
- runs: https://learn.microsoft.com/azure/machine-learning/how-to-track-experiments-mlflow ("Support matrix for
  querying runs and experiments"): no ordering by metrics/params/tags, no OR, no `!=` on tags, no experiment
  rename. Datasets (`log_inputs`) and logged models (MLflow 3 `/logged-models`) are not in it.

How AML refuses, as the MLflow client then raises it:
- a route AML lacks: HTTP 404 with an empty body, so `MlflowException("API request to endpoint ... failed with
  error code 404 != 200. Response body: ''")` with ENDPOINT_NOT_FOUND (Azure/azure-sdk-for-python#44896);
- a request AML rejects: `RestException` INVALID_PARAMETER_VALUE whose body is an Azure error
  `{"Error": {"Code": "ValidationError", "Message": "The request is invalid."}}` (mlflow/mlflow#8008).
Which of the two AML gives for each refused call is not documented; tests that depend on it try both.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import ENDPOINT_NOT_FOUND
from mlflow.tracking import MlflowClient

ROUTE_MISSING = "route_missing"
VALIDATION = "validation"
_NAME_ONLY = re.compile(r"""^\s*name\s*=\s*(['"])[^'"]*\1\s*$""", re.IGNORECASE)


def route_missing(endpoint: str) -> MlflowException:
    return MlflowException(
        f"API request to endpoint {endpoint} failed with error code 404 != 200. Response body: ''",
        error_code=ENDPOINT_NOT_FOUND,
    )


def validation_error() -> RestException:
    return RestException(
        {
            "Error": {
                "Code": "ValidationError",
                "Severity": None,
                "Message": "The request is invalid.",
                "MessageFormat": None,
                "Details": [],
            },
            "ComponentName": "mlflow",
            "statusCode": 400,
            "error_code": "INVALID_PARAMETER_VALUE",
        }
    )


class AmlLikeClient(MlflowClient):
    """Refuses every registry/tracking call outside AML's support matrix; records what it refused."""

    refused: ClassVar[list[str]] = []
    alias_refusal: ClassVar[str] = ROUTE_MISSING

    def _refuse(self, call: str, how: str, endpoint: str) -> MlflowException:
        type(self).refused.append(call)
        return route_missing(endpoint) if how == ROUTE_MISSING else validation_error()

    # -- aliases: not in the matrix ------------------------------------------------------------------------
    def set_registered_model_alias(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse(
            "set_registered_model_alias", self.alias_refusal, "/api/2.0/mlflow/registered-models/alias"
        )

    def delete_registered_model_alias(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse(
            "delete_registered_model_alias", self.alias_refusal, "/api/2.0/mlflow/registered-models/alias"
        )

    def get_model_version_by_alias(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse(
            "get_model_version_by_alias", self.alias_refusal, "/api/2.0/mlflow/registered-models/alias"
        )

    # -- registered models are immutable (footnote 3) ------------------------------------------------------
    def set_registered_model_tag(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse(
            "set_registered_model_tag", VALIDATION, "/api/2.0/mlflow/registered-models/set-tag"
        )

    def delete_registered_model_tag(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse(
            "delete_registered_model_tag", VALIDATION, "/api/2.0/mlflow/registered-models/delete-tag"
        )

    def rename_registered_model(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("rename_registered_model", VALIDATION, "/api/2.0/mlflow/registered-models/rename")

    def update_registered_model(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("update_registered_model", VALIDATION, "/api/2.0/mlflow/registered-models/update")

    def delete_registered_model(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse("delete_registered_model", VALIDATION, "/api/2.0/mlflow/registered-models/delete")

    # -- searches: by name only ------------------------------------------------------------------------------
    def search_registered_models(self, filter_string: str | None = None, *args: Any, **kwargs: Any) -> Any:
        text = (filter_string or "").lower()
        if "tags." in text or " like " in text or " ilike " in text:
            raise self._refuse(
                "search_registered_models", VALIDATION, "/api/2.0/mlflow/registered-models/search"
            )
        return super().search_registered_models(filter_string, *args, **kwargs)

    def search_model_versions(self, filter_string: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if filter_string and not _NAME_ONLY.match(filter_string):
            raise self._refuse("search_model_versions", VALIDATION, "/api/2.0/mlflow/model-versions/search")
        return super().search_model_versions(filter_string, *args, **kwargs)

    # -- runs ------------------------------------------------------------------------------------------------
    def search_runs(self, experiment_ids: Any, filter_string: str = "", *args: Any, **kwargs: Any) -> Any:
        order_by = kwargs.get("order_by") or (args[2] if len(args) > 2 else None) or []
        text = f" {filter_string.lower()} "
        if (
            any(o.split(".", 1)[0].strip().lower() in ("metrics", "params", "tags") for o in order_by)
            or " or " in text
            or re.search(r"tags\.\S+\s*!=", text)
        ):
            raise self._refuse("search_runs", VALIDATION, "/api/2.0/mlflow/runs/search")
        return super().search_runs(experiment_ids, filter_string, *args, **kwargs)

    def rename_experiment(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse("rename_experiment", VALIDATION, "/api/2.0/mlflow/experiments/update")

    def log_inputs(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse("log_inputs", ROUTE_MISSING, "/api/2.0/mlflow/runs/log-inputs")

    def log_outputs(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse("log_outputs", ROUTE_MISSING, "/api/2.0/mlflow/runs/outputs")

    def create_logged_model(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("create_logged_model", ROUTE_MISSING, "/api/2.0/mlflow/logged-models")

    def search_logged_models(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("search_logged_models", ROUTE_MISSING, "/api/2.0/mlflow/logged-models/search")


def aml_client_class(alias_refusal: str = ROUTE_MISSING) -> type[AmlLikeClient]:
    """A fresh subclass (its own `refused` list) refusing alias calls the given way."""
    return type("AmlLikeClient", (AmlLikeClient,), {"refused": [], "alias_refusal": alias_refusal})


def install(monkeypatch: Any, cls: type[AmlLikeClient]) -> None:
    """Make every `MlflowClient()` the project's code (and MLflow's fluent API) creates an AML-like one."""
    import mlflow
    import mlflow.tracking
    import mlflow.tracking.fluent

    for module in (mlflow, mlflow.tracking, mlflow.tracking.fluent):
        monkeypatch.setattr(module, "MlflowClient", cls)
