"""Issue 15 #2: no value that reaches a step's command line may carry shell syntax, on either runner.

Azure ML pastes input values into the command as they are, so quoting the placeholder cannot stop a `'` from
closing the quote: the value is refused before anything runs, naming the input. A data file whose name carries
shell syntax (`O'Brien.csv`) is refused too — Azure ML's mount path ends with that name — with a hint to rename it.
Each case checks the message, the exit code (where the CLI is involved), that nothing ran (no planted `touch`
happened) and that the input is still there."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlops.cli import app
from amlops.config import Settings
from amlops.errors import EXIT_USAGE, UsageError
from amlops.runner.command import render
from amlops.runner.local import run_pipeline
from amlops.shell_values import check_value, shell_syntax

REPO = Path(__file__).resolve().parents[2]
RUNNER_FIXTURES = REPO / "tests" / "runner" / "fixtures"
SCHEMA = REPO / "data" / "schema" / "demand.yaml"

HOSTILE = [
    "x';touch PWNED;'",
    "x$(touch PWNED)",
    "x`touch PWNED`",
    "x; touch PWNED",
    "x && touch PWNED",
    "x | touch PWNED",
    "x > PWNED",
    "x\ntouch PWNED",
    "x\\'",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_by_the_checker(value: str) -> None:
    with pytest.raises(UsageError, match=r"input 'model_name' = .* has shell syntax") as info:
        check_value("model_name", value)
    assert info.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "value",
    [
        '{"psi":0.2,"js":0.1}',
        "max_iter=60,learning_rate=0.1",
        "two words",
        "a1b2c3-dirty",
        "/tmp/my data/x.csv",
    ],
)
def test_json_params_and_spaces_are_inert(value: str) -> None:
    assert shell_syntax(value) == []
    check_value("params", value)


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("model_name", "python -m x --model-name '${{inputs.model_name}}'"),
        ("git_commit", "python -m x $[[--git-commit '${{inputs.git_commit}}']]"),
        ("thresholds", "python -m x $[[--thresholds '${{inputs.thresholds}}']]"),
        ("params", "python -m x $[[--params '${{inputs.params}}']]"),
        ("data_uri", "python -m x $[[--data-uri '${{inputs.data_uri}}']]"),
        ("seed", "python -m x --seed ${{inputs.seed}}"),
    ],
)
def test_the_local_rendering_refuses_each_text_input(name: str, template: str) -> None:
    with pytest.raises(UsageError, match=rf"job 'j': input '{name}' = .*has shell syntax \(\"'\" ';'\)"):
        render(template, {name: "v';touch PWNED;'"}, {}, "job 'j'", literal={name})


def test_an_input_not_on_the_command_line_is_not_checked() -> None:
    assert render("python -m x", {"model_name": "a;b"}, {}, "j", literal={"model_name"}) == "python -m x"


def _copy_fixtures(tmp_path: Path) -> Path:
    src = tmp_path / "p"
    shutil.copytree(RUNNER_FIXTURES, src)
    return src


def test_local_run_refuses_a_hostile_literal_before_any_step(settings: Settings, tmp_path: Path) -> None:
    src = _copy_fixtures(tmp_path)
    (src / "components" / "count.yml").write_text(
        (src / "components" / "count.yml")
        .read_text()
        .replace("--label ${{inputs.label}}", "--label '${{inputs.label}}'")
    )
    with pytest.raises(UsageError, match=r"input 'label' = \"x';touch PWNED;'\" has shell syntax"):
        run_pipeline(src / "pipelines" / "basic.yml", {"label": "x';touch PWNED;'"}, settings, quiet=True)
    assert not list(tmp_path.rglob("PWNED")), "the planted command ran"
    manifests = list(settings.runs_path.rglob("run.json"))
    assert [json.loads(m.read_text())["status"] for m in manifests] == ["failed"]  # never left "running"


def test_local_run_refuses_a_data_folder_named_with_a_quote(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "O'Brien"
    shutil.copytree(RUNNER_FIXTURES / "data" / "files", data)
    with pytest.raises(
        UsageError, match=r"input 'data': the file name \"O'Brien\" has shell syntax .*rename"
    ):
        run_pipeline(RUNNER_FIXTURES / "pipelines" / "basic.yml", {"raw": str(data)}, settings, quiet=True)
    assert sorted(p.name for p in data.iterdir()) == ["one.txt", "two.txt"]  # the input is untouched


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "amlops.yaml"
    config.write_text(f"model_name: shell-model\ndata:\n  schema_file: {SCHEMA}\n")
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("file_name", ["O'Brien.csv", "x';touch PWNED;'.csv", "$(touch PWNED).csv"])
def test_train_refuses_a_data_file_named_with_shell_syntax(project: Path, file_name: str) -> None:
    data = project / file_name
    data.write_text("date,store_id\n")
    result = CliRunner().invoke(app, ["train", "--data", str(data)], env={"COLUMNS": "300"})
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"--data {data}: input 'raw_file': the file name {file_name!r}" in " ".join(result.output.split())
    assert "rename the file" in result.output
    assert data.read_text() == "date,store_id\n"
    assert not (project / "PWNED").exists() and not (project / "runs").exists()


def test_train_refuses_a_hostile_model_name_from_the_config(project: Path) -> None:
    (project / "amlops.yaml").write_text(
        f"model_name: \"m';touch PWNED;'\"\ndata:\n  schema_file: {SCHEMA}\n"
    )
    data = project / "sales.csv"
    data.write_text("date,store_id\n")
    result = CliRunner().invoke(app, ["train", "--data", str(data)], env={"COLUMNS": "300"})
    assert not (project / "PWNED").exists()
    assert result.exit_code == EXIT_USAGE, result.output
    assert "job 'evaluate': input 'model_name' = \"m';touch PWNED;'\" has shell syntax" in " ".join(
        result.output.split()
    )
    assert "▶" not in result.output  # refused before the first step ran


# --- Azure ML: the same rule before submission (the fake Azure of tests/azure records every request) ------------


def _fake_azure(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "tests" / "azure"))
    import requests
    from azure_helpers import seed_workspace
    from fakeazure import LOCATION, RG, SUB, WS, FakeAzure, FakeCredential

    import amlops.azure.client as azclient

    azure = FakeAzure()
    seed_workspace(azure)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", lambda _self, req, **_kw: azure.send(req))
    monkeypatch.setattr(azclient, "default_credential", FakeCredential)
    return azure, (SUB, RG, WS, LOCATION)


def _azure_settings(tmp_path: Path, ids: tuple[str, str, str, str]) -> Settings:
    s = Settings(base_dir=tmp_path)
    s.azure.subscription_id, s.azure.resource_group, s.azure.workspace, s.azure.location = ids
    s.azure.compute = "cpu-cluster"
    return s


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"model_name": "m';touch PWNED;'"}, r"input 'model_name' = .* has shell syntax"),
        ({"git_commit": "abc$(reboot)"}, r"input 'git_commit' = .* has shell syntax \('\$'\)"),
        ({"params": "max_iter=60';id;'"}, r"input 'params' = .* has shell syntax"),
        ({"data_uri": "/data/O'Brien.csv"}, r"input 'data_uri' = .* has shell syntax \(\"'\"\)"),
    ],
    ids=["model_name", "git_commit", "params", "data_uri"],
)
def test_azure_submission_refuses_a_hostile_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs: dict[str, str], message: str
) -> None:
    from amlops.azure import jobs

    fake, ids = _fake_azure(monkeypatch)
    with pytest.raises(UsageError, match=message):
        jobs.submit_pipeline(
            REPO / "pipelines" / "training.yml", inputs, _azure_settings(tmp_path, ids), wait=False
        )
    assert not fake.calls("PUT", r"/jobs/[^/]+$"), "a job was submitted"


def test_azure_submission_refuses_a_data_file_named_with_a_quote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amlops.azure import jobs

    fake, ids = _fake_azure(monkeypatch)
    data = tmp_path / "O'Brien.csv"
    data.write_text("date\n")
    with pytest.raises(UsageError, match=r"input 'raw_file': the file name \"O'Brien.csv\" has shell syntax"):
        jobs.submit_pipeline(
            REPO / "pipelines" / "training.yml",
            {"raw_file": str(data)},
            _azure_settings(tmp_path, ids),
            wait=False,
        )
    assert not fake.calls("PUT", r"/jobs/[^/]+$")
    assert not [k for k in fake.blobs if k.endswith(".csv")], "the data was uploaded"
    assert data.read_text() == "date\n"


def test_azure_submission_takes_json_thresholds_and_a_plain_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule does not refuse what the pipelines need: JSON params, spaces in a parent folder."""
    from amlops.azure import jobs

    fake, ids = _fake_azure(monkeypatch)
    folder = tmp_path / "my data (2024)"
    folder.mkdir()
    (folder / "sales.csv").write_text("date\n")
    jobs.submit_pipeline(
        REPO / "pipelines" / "training.yml",
        {"raw_file": str(folder / "sales.csv"), "params": '{"max_iter":60,"l2":[1, 2]}'},
        _azure_settings(tmp_path, ids),
        wait=False,
    )
    body = fake.calls("PUT", r"/jobs/[^/]+$")[0].json()["properties"]
    assert body["inputs"]["params"]["value"] == '{"max_iter":60,"l2":[1, 2]}'
