"""`amlops score` and the batch inference pipeline: the champion scores; a promotion changes who is next."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scoring_helpers import PIPELINE, bare_predictions, files_in, read_predictions
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import Settings
from amlops.console import UserError
from amlops.scoring import parse_model, resolve_version


class NoAliasClient:
    """An MlflowClient as Azure ML's MLflow endpoint answers: every alias call is unsupported."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        raise NotImplementedError("aliases are not supported")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.chdir(settings.base_dir)
    monkeypatch.setenv("AMLOPS_CONFIG", str(settings.base_dir / "amlops.yaml"))
    return CliRunner().invoke(app, ["score", "--pipeline", str(PIPELINE), *args])


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        (None, None, ("m", "champion", None)),
        ("other@challenger", None, ("other", "challenger", None)),
        ("other/4", None, ("other", None, "4")),
        ("other:4", None, ("other", None, "4")),
        ("other", "7", ("other", None, "7")),
        (None, "7", ("m", None, "7")),
    ],
)
def test_model_options(
    spec: str | None, version: str | None, expected: tuple[str, str | None, str | None]
) -> None:
    assert parse_model(spec, "m", version) == expected


@pytest.mark.parametrize(
    ("spec", "version"), [("m@", None), ("m/x", None), ("m@champion", "3"), (None, "v3")]
)
def test_bad_model_options_are_one_line_errors(spec: str | None, version: str | None) -> None:
    with pytest.raises(UserError):
        parse_model(spec, "m", version)


@pytest.mark.parametrize("aliases", [True, False], ids=["aliases", "role-tags-only"])
def test_the_champion_is_resolved_through_the_registry_and_follows_promotion(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    aliases: bool,
) -> None:
    base = registry.client_for(scoring_settings)
    client = base if aliases else NoAliasClient(base)
    name = scoring_settings.model_name
    v1, v2 = register_model(model_dirs["v1"]), register_model(model_dirs["v2"])
    with pytest.raises(UserError, match="has no champion"):
        resolve_version(client, name, "champion", None)
    registry.promote(client, name, v1, reason="first", actor="test")
    assert resolve_version(client, name, "champion", None) == v1
    registry.promote(client, name, v2, reason="better", actor="test")
    assert resolve_version(client, name, "champion", None) == v2
    assert resolve_version(client, name, None, v1) == v1
    with pytest.raises(UserError, match="no version 9"):
        resolve_version(client, name, None, "9")


def test_input_that_does_not_fit_the_model_fails_before_the_pipeline_starts(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry.promote(
        scoring_settings, scoring_settings.model_name, register_model(model_dirs["v1"]), "x", "t"
    )
    bad = scoring_settings.base_dir / "bad.parquet"
    demand.head(20).drop(columns=["promotion"]).to_parquet(bad, index=False)
    result = cli(scoring_settings, monkeypatch, "--input", str(bad))
    assert result.exit_code == 1, result.output
    assert f"{bad}: column 'promotion' is missing: the model requires it" in " ".join(result.output.split())
    assert not scoring_settings.runs_path.exists()


def test_no_champion_is_a_clear_error(
    scoring_settings: Settings, demand: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = scoring_settings.base_dir / "new.parquet"
    demand.head(5).to_parquet(data, index=False)
    result = cli(scoring_settings, monkeypatch, "--input", str(data))
    assert result.exit_code == 1
    assert "has no champion" in result.output


@pytest.mark.slow
def test_score_command_uses_the_champion_and_a_promotion_changes_the_next_scoring(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = scoring_settings.model_name
    v1, v2 = register_model(model_dirs["v1"]), register_model(model_dirs["v2"])
    registry.promote(scoring_settings, name, v1, reason="first", actor="test")
    week = demand.head(300)
    data = scoring_settings.base_dir / "week.parquet"  # a single file is fine
    week.to_parquet(data, index=False)

    first = cli(scoring_settings, monkeypatch, "--input", str(data), "--out", "scored-1")
    assert first.exit_code == 0, first.output
    assert f"scored 300 rows in 1 file(s) with {name} v{v1}" in first.output
    scored = read_predictions(scoring_settings.base_dir / "scored-1")
    assert set(scored["model_version"]) == {v1}
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), bare_predictions(model_dirs["v1"], week))

    registry.promote(scoring_settings, name, v2, reason="retrained", actor="test")
    second = cli(scoring_settings, monkeypatch, "--input", str(data), "--out", "scored-2")
    assert second.exit_code == 0, second.output
    scored = read_predictions(scoring_settings.base_dir / "scored-2")
    assert set(scored["model_version"]) == {v2}
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), bare_predictions(model_dirs["v2"], week))
    assert scored["row_id"].tolist() == week["row_id"].tolist()


@pytest.mark.slow
def test_pipeline_step_fails_on_a_bad_csv_value_with_no_output(
    scoring_settings: Settings, model_dirs: dict[str, Path], demand: pd.DataFrame
) -> None:
    """The header is fine (so the command's quick check passes); the step's own check parses every value."""
    from amlops.runner.local import StepFailed, run_pipeline

    data = scoring_settings.base_dir / "in"
    data.mkdir()
    demand.head(30).to_parquet(data / "a.parquet", index=False)
    bad = demand.iloc[30:60].astype({"temperature": object})
    bad.loc[bad.index[3], "temperature"] = "warm"
    bad.to_csv(data / "b.csv", index=False)
    inputs = {"data": str(data), "model": str(model_dirs["v1"]), "model_version": "1"}
    with pytest.raises(StepFailed) as info:
        run_pipeline(PIPELINE, inputs, scoring_settings, quiet=True)
    first_line = str(info.value).splitlines()[0]
    assert f"{data / 'b.csv'}: column 'temperature': a value is not a number (double)" in first_line
    assert "warm" in first_line
    assert files_in(info.value.result.run_dir / "score" / "predictions") == []


def test_pipeline_without_a_model_version_names_the_argument(
    scoring_settings: Settings, model_dirs: dict[str, Path], demand: pd.DataFrame
) -> None:
    """`amlops run pipelines/batch_inference.yml` without model_version: the empty default leaves no argument (as
    on Azure ML), and the error names it instead of a bare `SystemExit: 2`."""
    from amlops.runner.local import StepFailed, run_pipeline

    data = scoring_settings.base_dir / "in"
    data.mkdir()
    demand.head(30).to_parquet(data / "a.parquet", index=False)
    with pytest.raises(StepFailed) as info:
        run_pipeline(
            PIPELINE, {"data": str(data), "model": str(model_dirs["v1"])}, scoring_settings, quiet=True
        )
    first_line = str(info.value).splitlines()[0]
    assert "score.py: argument --model-version: expected one argument" in first_line
    log = Path(info.value.result.steps[0].log or "").read_text()
    assert "# note: input 'model_version' is empty" in log


class FakeModels:
    """azure-ai-ml's `ml.models`: versions with tags, no aliases (as the Azure ML registry has none)."""

    def __init__(self, tags: dict[str, dict[str, str]]) -> None:
        self._tags = tags

    def _model(self, name: str, version: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(name=name, version=version, tags=self._tags[version])

    def list(self, name: str) -> list[Any]:
        return [self._model(name, v) for v in self._tags]

    def get(self, name: str, version: str) -> Any:
        return self._model(name, version)


def test_on_azure_the_champion_comes_from_role_tags_and_the_model_input_is_the_asset(
    scoring_settings: Settings, demand: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import amlops.azure.client
    import amlops.azure.jobs
    from amlops.azure.jobs import SubmittedJob

    tags = {
        "1": {"role.champion": "2026-01-05T10:00:00.000000Z"},  # a stale tag left by an interrupted move
        "2": {"role.champion": "2026-02-01T09:00:00.000000Z"},
        "3": {"role.challenger": "2026-02-02T09:00:00.000000Z"},
    }
    fake_ml = SimpleNamespace(models=FakeModels(tags))
    submitted: dict[str, Any] = {}

    def submit(path: Path, inputs: dict[str, str], settings: Settings, **kwargs: Any) -> SubmittedJob:
        submitted.update(path=path, inputs=inputs, **kwargs)
        submitted["uploaded"] = sorted(p.name for p in Path(inputs["data"]).iterdir())
        return SubmittedJob("batch-inference-1", None, "Completed")

    monkeypatch.setattr(amlops.azure.client, "ml_client", lambda settings, env=None: fake_ml)
    monkeypatch.setattr(amlops.azure.jobs, "submit_pipeline", submit)
    data = scoring_settings.base_dir / "week.parquet"
    demand.head(10).to_parquet(data, index=False)
    result = cli(scoring_settings, monkeypatch, "--input", str(data), "--target", "azure")
    assert result.exit_code == 0, result.output
    name = scoring_settings.model_name
    assert submitted["inputs"]["model"] == f"azureml:{name}:2"
    assert submitted["inputs"]["model_version"] == "2"
    # A single file travels as a folder holding it (the pipeline's data input is a uri_folder).
    assert submitted["uploaded"] == ["week.parquet"]
    assert not Path(submitted["inputs"]["data"]).exists()  # the staged copy is gone once submitted
    assert "az ml job download -n batch-inference-1 --output-name predictions" in result.output


def test_a_column_name_with_a_space_is_refused_before_scoring(tmp_path: Path) -> None:
    """Azure ML splits a parallel step's arguments at spaces, quoted or not: say so before anything runs."""
    from amlops.config import load_settings
    from amlops.job_inputs import scoring_inputs as pipeline_inputs

    (tmp_path / "amlops.yaml").write_text("monitor:\n  id_column: order id\n")
    settings = load_settings(tmp_path / "amlops.yaml", environ={})
    with pytest.raises(UserError, match=r"monitor\.id_column: 'order id' has a space"):
        pipeline_inputs(settings, "data", "model", "1")


@pytest.mark.parametrize("where", ["same-folder", "input-folder", "inside-input", "a-file"])
def test_out_that_would_overwrite_the_input_is_refused_before_any_work(tmp_path: Path, where: str) -> None:
    from amlops.errors import UsageError
    from amlops.scoring import check_destination

    folder = tmp_path / "in"
    folder.mkdir()
    data = folder / "batch.parquet"
    data.write_bytes(b"PAR1")
    given, dest = {
        "same-folder": (data, folder),  # predictions/batch.parquet would replace the input file
        "input-folder": (folder, folder),
        "inside-input": (folder, folder / "scored"),  # mixed into the input: the next run scores its output
        "a-file": (folder, data),
    }[where]
    with pytest.raises(UsageError, match="--out"):
        check_destination(given, dest)
    assert data.read_bytes() == b"PAR1"
    check_destination(folder, tmp_path / "predictions")  # elsewhere: fine
    check_destination(data, folder / "scored")  # a file's predictions in a folder beside it: fine
    csv = folder / "week.csv"
    csv.write_text("x\n1\n")
    check_destination(csv, folder)  # week.parquet beside week.csv overwrites nothing
