"""The parallel driver's command line as the entry script sees it (sys.argv in init()): Azure ML's driver puts its
own reserved arguments, `--output` (its summary folder) among them, around the component's program_arguments
(azureml-pipeline-steps _parallel_run_step_base.py `_generate_main_file_args`). The score entry must read its
own arguments whatever the order, and ignore the driver's."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import pytest

from amlops.runner.parallel import drive, driver_argv
from amlops.steps import score

PROGRAM = "--data /mnt/in --model /mnt/model --model-version 7 --threads 1 --predictions /mnt/predictions"


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "entry_script": "amlops/steps/score.py",
        "program_arguments": PROGRAM,
        "append_row_to": "/mnt/summary",
        "mini_batch_size": "1",
        "max_concurrency_per_instance": 2,
        "error_threshold": 0,
        "retry_settings": {"max_retries": 2, "timeout": 1800},
        **extra,
    }


def test_the_local_driver_passes_the_azure_ml_drivers_reserved_arguments() -> None:
    argv = driver_argv(spec())
    assert argv[0] == "driver/amlbi_main.py"
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert pairs["--output"] == "/mnt/summary"
    assert pairs["--scoring_module_name"] == "amlops/steps/score.py"
    assert pairs["--process_count_per_node"] == "2" and pairs["--run_invocation_timeout"] == "1800"
    assert " ".join(argv).find(PROGRAM) > argv.index("--output")  # program arguments after the reserved ones
    assert argv[-2:] == ["--input_fds_0", "input_data"]


def driver_orders() -> list[list[str]]:
    """The real shape, and the program arguments first (the order is the service's choice, not ours)."""
    argv = driver_argv(spec())[1:]
    program = shlex.split(PROGRAM)
    reserved = [a for a in argv if a not in program]
    return [argv, [*program, *reserved]]


@pytest.mark.parametrize("argv", driver_orders(), ids=["driver-order", "program-first"])
def test_the_score_entry_reads_its_own_arguments_among_the_drivers(argv: list[str]) -> None:
    args = score.parallel_arguments(argv)
    assert args.predictions == "/mnt/predictions" and args.model_version == "7"
    assert args.data == "/mnt/in" and args.threads == 1


def test_an_entry_that_reuses_a_reserved_name_reads_the_drivers_value() -> None:
    # What score.py's `--output` did: with the program arguments first, the driver's --output wins.
    parser = argparse.ArgumentParser()
    parser.add_argument("--output")
    _, program_first = driver_orders()
    args, _ = parser.parse_known_args([a.replace("--predictions", "--output") for a in program_first])
    assert args.output == "/mnt/summary"


def test_no_entry_argument_of_score_is_a_reserved_driver_argument() -> None:
    own = {
        opt.lstrip("-").replace("-", "_")
        for action in score._parser("score.py")._actions
        for opt in action.option_strings
    }
    assert not own & score.PARALLEL_DRIVER_RESERVED


def test_the_old_output_argument_is_refused_by_the_parallel_entry() -> None:
    with pytest.raises(score.ScoreInputError, match="--predictions"):
        score.parallel_arguments(shlex.split(PROGRAM.replace("--predictions", "--output")))


def test_the_driver_fails_on_input_data_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Zero mini-batches from a missing folder must not read as a successful, empty run."""
    entry = tmp_path / "entry.py"
    entry.write_text("def init():\n    pass\n\ndef run(batch):\n    return batch\n", encoding="utf-8")
    missing = tmp_path / "my data"
    code = drive({"entry_script": str(entry), "input_data": f"'{missing}'", "program_arguments": ""})
    assert code == 1
    assert f"input_data '{missing}' does not exist" in capsys.readouterr().err
