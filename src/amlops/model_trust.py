"""Whether loading an MLflow model folder runs code from it (unpickling), said before it is loaded.

Unpickling executes whatever the pickle says, with the user's permissions. A model from this project's own
registry (a `models:/` URI, downloaded by the runner) is the project's own artifact; a bare folder someone hands
over is not, so loading it gets one warning line first. The formats: the sklearn flavor's `pickled_model` with
`serialization_format` cloudpickle or pickle (skops is a restricted format and does not run code), and a
python_function model saved from a Python object (`python_model.pkl`, cloudpickle) — mlflow/sklearn/__init__.py
(`SERIALIZATION_FORMAT_PICKLE`, `SERIALIZATION_FORMAT_CLOUDPICKLE`, `SERIALIZATION_FORMAT_SKOPS`) and
mlflow/pyfunc/model.py (`python_model.pkl`).
"""

from __future__ import annotations

from pathlib import Path

_PICKLE_FORMATS = ("cloudpickle", "pickle")


def pickled_file(folder: Path) -> str | None:
    """The file loading `folder` would unpickle (relative to it), or None (not a pickle-based model)."""
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    flavors = mlmodel.get("flavors") or {}
    sklearn = flavors.get("sklearn") or {}
    if sklearn.get("pickled_model") and sklearn.get("serialization_format", "cloudpickle") in _PICKLE_FORMATS:
        return str(sklearn["pickled_model"])
    pyfunc = flavors.get("python_function") or {}
    if pyfunc.get("python_model"):
        return str(pyfunc["python_model"])
    return None


def untrusted_model_note(folder: Path) -> str | None:
    """The warning line for a user-given model folder that unpickles when loaded (None: nothing to say)."""
    pickled = pickled_file(folder)
    if pickled is None:
        return None
    return (
        f"model folder {folder} is loaded by unpickling {pickled}, which runs code from the file: load only "
        "models you trust (a models:/ URI from this project's registry is the project's own)"
    )
