"""The parsed-plan cache: a hit skips azure-ai-ml and equals a fresh parse; any change re-parses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import amlops.runner.plan_cache as pc
from amlops.runner.plan import PathValue, Plan, build_plan

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the runner fixtures, so a test may edit the pipeline and component files."""
    root = tmp_path / "project"
    for sub in ("pipelines", "components", "src", "data"):
        shutil.copytree(FIXTURES / sub, root / sub)
    return root


def _shape(plan: Plan) -> list[tuple[Any, ...]]:
    """What a run uses from a plan, with environments reduced to what `spec_of` reads."""
    rows: list[tuple[Any, ...]] = [("inputs", sorted((k, repr(v)) for k, v in plan.inputs.items()))]
    for s in plan.steps:
        env = s.environment
        env_view = env if env is None or isinstance(env, str) else (env.name, env.image, env.conda_file)
        rows.append(
            (
                s.name,
                s.kind,
                s.command,
                str(s.code_dir),
                sorted((k, repr(v)) for k, v in s.inputs.items()),
                sorted((k, o.type, o.target) for k, o in s.outputs.items()),
                sorted(s.environment_variables.items()),
                env_view,
                s.timeout,
            )
        )
    return [*rows, ("outputs", sorted((k, str(v)) for k, v in plan.outputs.items()))]


def test_a_hit_equals_a_fresh_parse(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "nested.yml"
    first = pc.cached_build_plan(pipeline, {}, cache)
    assert len(list(cache.glob("*.pickle"))) == 1
    second = pc.cached_build_plan(pipeline, {}, cache)
    assert _shape(second) == _shape(first) == _shape(build_plan(pipeline))


def test_a_hit_does_not_import_the_sdk(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    pc.cached_build_plan(pipeline, {}, cache)  # warm it here
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from amlops.runner.plan_cache import cached_build_plan
        plan = cached_build_plan(Path({str(pipeline)!r}), {{}}, Path({str(cache)!r}))
        print(json.dumps({{"sdk": "azure.ai.ml" in sys.modules, "steps": [s.name for s in plan.steps]}}))
        """
    )
    env = {**os.environ, "AMLOPS_PLAN_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"sdk": False, "steps": [s.name for s in build_plan(pipeline).steps]}


def test_a_changed_component_file_reparses(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    before = pc.cached_build_plan(pipeline, {}, cache)
    component = next(s.source for s in before.steps if s.source is not None)
    assert component is not None
    text = component.read_text()
    assert "python " in text
    component.write_text(text.replace("python ", "python -X utf8 ", 1))
    after = pc.cached_build_plan(pipeline, {}, cache)
    changed = next(s for s in after.steps if s.source == component)
    assert changed.command is not None and "-X utf8" in changed.command
    assert _shape(after) == _shape(build_plan(pipeline))


def test_a_changed_pipeline_file_reparses(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    pc.cached_build_plan(pipeline, {}, cache)
    pipeline.write_text(pipeline.read_text().replace("display_name:", "display_name: changed", 1))
    assert _shape(pc.cached_build_plan(pipeline, {}, cache)) == _shape(build_plan(pipeline))
    assert pc.cached_build_plan(pipeline, {}, cache).name == build_plan(pipeline).name


def test_path_inputs_are_resolved_per_call_and_literals_reparse(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    monkeypatch.chdir(tmp_path)
    parsed: list[Path] = []
    real = pc.build_plan
    monkeypatch.setattr(pc, "build_plan", lambda *a, **k: parsed.append(a[0]) or real(*a, **k))
    for raw, scale in (("a", "1"), ("b", "1"), ("/abs/c", "1"), ("b", "2.5")):
        got = pc.cached_build_plan(pipeline, {"raw": raw, "scale": scale}, cache)
        want = build_plan(pipeline, {"raw": raw, "scale": scale})
        assert _shape(got) == _shape(want)
        assert isinstance(got.inputs["raw"], PathValue) and got.inputs["raw"].path.endswith(raw.lstrip("."))
    # parsed for the first call and for the new literal (scale), not for new paths
    assert len(parsed) == 2


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    parsed: list[Path] = []
    real = pc.build_plan
    monkeypatch.setattr(pc, "build_plan", lambda *a, **k: parsed.append(a[0]) or real(*a, **k))
    return parsed


def test_a_new_text_value_is_pasted_into_the_cached_plan_as_a_parse_binds_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text input (`label: first` here; a training's data_uri, a scoring's model_version) changes from run to
    run. The first parse keeps a plan with a marker for it, and every later value (quotes, spaces, what looks
    like a binding) is pasted in, equal to a fresh parse, bound whole and embedded in text alike. An empty value
    re-parses."""
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    text = pipeline.read_text()
    embedded = project / "pipelines" / "embedded.yml"
    embedded.write_text(
        text.replace("label: ${{parent.inputs.label}}", "label: run-${{parent.inputs.label}}-end")
    )
    monkeypatch.chdir(tmp_path)
    parsed = _counting_parses(monkeypatch)
    values = ["a", "b", 'it\'s a "label" with spaces', "${{parent.inputs.raw}}", "a\nb"]
    for yml, prefix, suffix in ((pipeline, "", ""), (embedded, "run-", "-end")):
        for label in values:
            got = pc.cached_build_plan(yml, {"raw": "data", "label": label, "scale": "1"}, cache)
            assert _shape(got) == _shape(build_plan(yml, {"raw": "data", "label": label, "scale": "1"}))
            assert got.step("count_job").inputs["label"] == f"{prefix}{label}{suffix}"
    # each pipeline: its parse and the marked parse, once
    assert parsed == [pipeline, pipeline, embedded, embedded]
    got = pc.cached_build_plan(pipeline, {"raw": "data", "label": "", "scale": "1"}, cache)
    assert got.step("count_job").inputs["label"] == "" and len(parsed) == 5


def test_text_values_a_parse_would_change_or_read_as_numbers_reparse(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pasting is kept only when it reproduces the parse. A text input bound to a number input (`scale: "2.5"`)
    fails the marked parse and re-parses for each value (a bad one fails as a parse does); a parse that altered
    the text it embeds (planted: upper case) fails the check, and each value re-parses."""
    from amlops.errors import UserError
    from amlops.runner import plan as plan_module

    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    original = pipeline.read_text()
    pipeline.write_text(original.replace("  scale: 2.5\n", '  scale: "2.5"\n', 1))
    monkeypatch.chdir(tmp_path)
    parsed = _counting_parses(monkeypatch)
    for scale in ("1", "2"):
        got = pc.cached_build_plan(pipeline, {"raw": "data", "scale": scale}, cache)
        assert got.step("total_job").inputs["scale"] == float(scale)
    assert len(parsed) == 4  # a parse and a failed marked parse each
    with pytest.raises(UserError, match="expected number"):
        pc.cached_build_plan(pipeline, {"raw": "data", "scale": "abc"}, cache)

    embedded = project / "pipelines" / "embedded.yml"
    embedded.write_text(
        original.replace("label: ${{parent.inputs.label}}", "label: x${{parent.inputs.label}}")
    )
    monkeypatch.setattr(plan_module, "render_primitive", lambda value: str(value).upper())
    for label in ("a", "b"):
        got = pc.cached_build_plan(embedded, {"raw": "data", "label": label, "scale": "1"}, cache)
        assert got.step("count_job").inputs["label"] == f"x{label.upper()}"


def test_a_new_runner_version_reparses(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    pc.cached_build_plan(pipeline, {}, cache)
    monkeypatch.setattr(pc, "runner_version", lambda: "a newer runner")
    parsed: list[Path] = []
    real = pc.build_plan
    monkeypatch.setattr(pc, "build_plan", lambda *a, **k: parsed.append(a[0]) or real(*a, **k))
    pc.cached_build_plan(pipeline, {}, cache)
    assert parsed == [pipeline.resolve()]


def test_without_the_digest_check_a_stale_plan_would_be_served(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest check is what keeps a changed file from being served stale (planted fault)."""
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    before = pc.cached_build_plan(pipeline, {}, cache)
    component = next(s.source for s in before.steps if s.source is not None)
    assert component is not None
    component.write_text(component.read_text().replace("python ", "python -X utf8 ", 1))
    monkeypatch.setattr(pc, "_digest", lambda path: "unchanged")  # every file "unchanged"
    monkeypatch.setattr(pc, "_load", _load_ignoring_digests)
    stale = pc.cached_build_plan(pipeline, {}, cache)
    assert all("-X utf8" not in (s.command or "") for s in stale.steps)


def _load_ignoring_digests(entry_file: Path, overrides: dict[str, str], cwd: Path, *_: Any) -> Plan | None:
    import pickle

    entry = pickle.loads(entry_file.read_bytes())
    return pc._with_paths(entry["plan"], {k: overrides[k] for k in entry["path_keys"]}, cwd)


def test_the_cache_can_be_turned_off(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLOPS_PLAN_CACHE", "0")
    cache = tmp_path / "plans"
    pc.cached_build_plan(project / "pipelines" / "basic.yml", {}, cache)
    assert not cache.exists()


# ----------------------------------------------------------------------------------------------- review (s9)
def _same_as_a_parse(cached: Plan, fresh: Plan) -> bool:
    """The whole plan, field by field (environments as the plain data a cached plan holds)."""
    return pc._portable(cached) == pc._portable(fresh)


def test_a_data_asset_given_for_a_path_input_is_served_as_a_parse_gives_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`amlops train --data azureml:demand:1` sets a path input to an asset reference; a parse keeps it for the
    local asset registry, and so must a hit (it was refused as "cannot be read locally")."""
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    monkeypatch.chdir(tmp_path)
    parsed = _counting_parses(monkeypatch)
    pc.cached_build_plan(pipeline, {"raw": "data"}, cache)
    for raw in ("azureml:demand:1", "demand:2", "demand@latest"):
        got = pc.cached_build_plan(pipeline, {"raw": raw}, cache)
        assert _same_as_a_parse(got, build_plan(pipeline, {"raw": raw}))
        assert got.step("count_job").inputs["data"] == PathValue(
            f"azureml:{raw.removeprefix('azureml:')}", "uri_folder"
        )
    assert len(parsed) == 1
    from amlops.errors import UserError

    with pytest.raises(UserError, match="Azure ML asset") as refused:
        build_plan(pipeline, {"raw": "azureml://jobs/abc/outputs/artifacts/paths/x"})
    with pytest.raises(UserError) as served:
        pc.cached_build_plan(pipeline, {"raw": "azureml://jobs/abc/outputs/artifacts/paths/x"}, cache)
    assert str(served.value) == str(refused.value)


def test_publishing_a_new_version_of_a_latest_component_reparses(project: Path, tmp_path: Path) -> None:
    """`component: azureml:count_lines@latest` names the version published last; a new one is a file no parse
    opened, so a hit resolves the references again (a stale command was served)."""
    from types import SimpleNamespace

    from amlops.runner.assets import publish_component, resolve_component

    pipeline = project / "pipelines" / "registered.yml"
    pipeline.write_text(
        (project / "pipelines" / "basic.yml")
        .read_text()
        .replace("component: ../components/count.yml", "component: azureml:count_lines@latest")
    )
    newer = project / "components" / "count_v2.yml"
    newer.write_text(
        (project / "components" / "count.yml").read_text().replace("python ", "python -X utf8 ", 1)
    )
    settings = SimpleNamespace(state_path=tmp_path / "state")
    publish_component(settings, project / "components" / "count.yml", "count_lines", "1")

    def components(ref: str) -> Path | None:
        return resolve_component(settings, ref)

    cache = tmp_path / "plans"
    first = pc.cached_build_plan(pipeline, {}, cache, tmp_path, components)
    assert "-X utf8" not in (first.step("count_job").command or "")
    assert (
        pc.cached_build_plan(pipeline, {}, cache, tmp_path, components).step("count_job").source
        == first.step("count_job").source
    )
    meta = settings.state_path / "assets" / "components" / "count_lines" / "1.json"
    record = json.loads(meta.read_text())
    publish_component(settings, newer, "count_lines", "2")
    later = settings.state_path / "assets" / "components" / "count_lines" / "2.json"
    later.write_text(json.dumps({**json.loads(later.read_text()), "created": record["created"] + 1}))
    got = pc.cached_build_plan(pipeline, {}, cache, tmp_path, components)
    assert "-X utf8" in (got.step("count_job").command or "")
    assert _same_as_a_parse(got, build_plan(pipeline, {}, tmp_path, components))


def test_an_entry_of_another_shape_is_a_miss(project: Path, tmp_path: Path) -> None:
    """A file in the cache with the right format number but not the fields this code writes (hand-made, or a
    development build) is parsed afresh, not a KeyError."""
    import pickle

    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    entry = cache / f"{pc._entry_key(pipeline.resolve(), {})}.pickle"
    entry.parent.mkdir(parents=True)
    for foreign in ({"format": pc.CACHE_FORMAT}, {"format": pc.CACHE_FORMAT, "literals": {}, "markers": {}}):
        entry.write_bytes(pickle.dumps(foreign))
        assert _same_as_a_parse(pc.cached_build_plan(pipeline, {}, cache), build_plan(pipeline))
    entry.write_bytes(b"\x80\x05truncated")
    assert _same_as_a_parse(pc.cached_build_plan(pipeline, {}, cache), build_plan(pipeline))


def test_two_writers_of_one_entry_in_one_process_do_not_collide(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted interleaving: a second writer stores the same entry between the first one's write and its rename
    (two threads of one process). Each writer has its own temporary file, so both renames succeed."""
    cache = tmp_path / "plans"
    pipeline = (project / "pipelines" / "basic.yml").resolve()
    plan = build_plan(pipeline)
    entry = cache / f"{pc._entry_key(pipeline, {})}.pickle"
    real_replace = os.replace
    interleaved: list[str] = []

    def replace_after_another_writer(src: Any, dst: Any) -> None:
        if not interleaved:
            interleaved.append(str(src))
            pc._store(entry, pipeline, {}, {}, plan, {})
        real_replace(src, dst)

    monkeypatch.setattr(pc.os, "replace", replace_after_another_writer)
    pc._store(entry, pipeline, {}, {}, plan, {})
    assert interleaved and entry.is_file() and [p.name for p in cache.iterdir()] == [entry.name]


def test_a_new_path_and_a_new_text_value_in_one_run_reach_every_step(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pasting copies the plan; a path input shared by the plan's inputs and a step must stay one object there, or
    the new path would reach the inputs and not the step (planted: a pasting that forgets what it copied)."""
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    monkeypatch.chdir(tmp_path)
    pc.cached_build_plan(pipeline, {"raw": "a", "label": "one"}, cache)

    def served() -> Plan:
        got = pc.cached_build_plan(pipeline, {"raw": "b", "label": "two"}, cache)
        assert got.step("count_job").inputs["label"] == "two"
        return got

    got = served()
    assert (
        got.step("count_job").inputs["data"]
        == got.inputs["raw"]
        == PathValue(str(tmp_path / "b"), "uri_folder")
    )
    assert _same_as_a_parse(got, build_plan(pipeline, {"raw": "b", "label": "two"}))
    real = pc._pasted
    monkeypatch.setattr(pc, "_pasted", lambda obj, values, memo=None: real(obj, values, None))
    assert served().step("count_job").inputs["data"] != PathValue(str(tmp_path / "b"), "uri_folder")


_NESTED_TEXT = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
type: pipeline
name: nest
inputs:
  data: {type: uri_folder}
  tag: {type: string}
outputs:
  counts: {type: uri_folder}
jobs:
  c:
    type: command
    component: ./count.yml
    inputs:
      data: ${{parent.inputs.data}}
      label: in-${{parent.inputs.tag}}
    outputs:
      counts: ${{parent.outputs.counts}}
"""

_TEXT_EVERYWHERE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
display_name: text everywhere
inputs:
  raw: {type: uri_folder, path: ../data/files}
  t: first
  u: second
  mb: "2"
  n: 5
jobs:
  count_job:
    type: command
    component: ../components/count.yml
    compute: ${{parent.inputs.u}}
    environment_variables:
      X: ${{parent.inputs.t}}
    inputs:
      data: ${{parent.inputs.raw}}
      label: pre-${{parent.inputs.t}}-${{parent.inputs.u}}
  nested:
    type: pipeline
    component: ../components/nest.yml
    inputs:
      data: ${{parent.inputs.raw}}
      tag: ${{parent.inputs.t}}
  split:
    type: command
    component: ../components/split.yml
    inputs:
      n: ${{parent.inputs.n}}
  score:
    type: parallel
    component: ../components/batch_score.yml
    mini_batch_size: ${{parent.inputs.mb}}
    inputs:
      data: ${{parent.jobs.split.outputs.parts}}
      fail_on: ${{parent.inputs.t}}
"""


def test_text_values_pasted_anywhere_a_pipeline_binds_them_equal_a_parse(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two text inputs bound whole, embedded twice in one text, in a nested pipeline, in `compute:`, beside
    `environment_variables`, in a parallel step's input and `mini_batch_size`; values with quotes, newlines,
    bindings, regex escapes, unicode, 5000 characters, one equal to the other input, path- and asset-looking
    text. Every hit equals a fresh parse, field by field; a new integer (`n`) re-parses, a bad one is refused as
    a parse refuses it."""
    (project / "components" / "nest.yml").write_text(_NESTED_TEXT)
    pipeline = project / "pipelines" / "text_everywhere.yml"
    pipeline.write_text(_TEXT_EVERYWHERE)
    cache = tmp_path / "plans"
    monkeypatch.chdir(tmp_path)
    parsed = _counting_parses(monkeypatch)
    base = {"raw": "data", "t": "a", "u": "gpu", "mb": "3"}
    values = ["b", "x 'q' \"dq\"", "${{parent.inputs.u}}", "l1\nl2", "\\1 \\g<0>", "é✓", "z" * 5000, "gpu"]
    values += ["./data", "azureml:m:1", " ", "1", "true"]
    for value in values:
        for sets in ({**base, "t": value}, {**base, "t": value, "u": value}, {**base, "mb": value}):
            got = pc.cached_build_plan(pipeline, sets, cache)
            assert _same_as_a_parse(got, build_plan(pipeline, sets)), sets
            assert got.step("count_job").compute == sets["u"]
            assert got.step("nested.c").inputs["label"] == f"in-{sets['t']}"
    assert len(parsed) == 2  # the parse and the marked parse
    from amlops.errors import UserError

    assert pc.cached_build_plan(pipeline, {**base, "n": "7"}, cache).step("split").inputs["n"] == 7
    with pytest.raises(UserError, match="expected integer"):
        pc.cached_build_plan(pipeline, {**base, "n": "seven"}, cache)


REPO = Path(__file__).resolve().parents[2]


def test_the_projects_pipelines_served_from_the_cache_equal_a_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pipelines/training.yml (`amlops train --data a.parquet`, then b.parquet, a URL, an asset), batch_inference.yml
    (a new model_version) and monitoring.yml (a new window and column kinds): each served plan is the parse."""
    cache = tmp_path / "plans"
    monkeypatch.chdir(tmp_path)
    parsed = _counting_parses(monkeypatch)
    gate = {
        "metric": "mae",
        "seed": "42",
        "params": '{"n": 1}',
        "schema": str(REPO / "data/schema/demand.yaml"),
    }
    runs: list[tuple[str, dict[str, str]]] = []
    for data, folder, commit in (
        ("a.parquet", False, "abc"),
        ("b.parquet", False, "def"),
        ("abfss://c@a.dfs.core.windows.net/d.parquet", False, "0"),
        ("azureml:demand:1", True, "1"),
        ("demand@latest", True, "2"),
    ):
        key = "raw_folder" if folder else "raw_file"
        runs.append(("training.yml", {**gate, key: data, "data_uri": data, "git_commit": commit}))
    for version in ("1", "2"):
        sets = {"data": "in", "model": "models:/demand/1", "model_version": version, "id_column": "row_id"}
        runs.append(("batch_inference.yml", sets))
    for window in ("auto", "2026-01-01/2026-02-01"):
        sets = {
            "current_data": "cur",
            "model": "models:/demand/1",
            "window": window,
            "column_kinds": f"a={window}",
        }
        runs.append(("monitoring.yml", sets))
    for name, sets in runs:
        pipeline = REPO / "pipelines" / name
        got = pc.cached_build_plan(pipeline, sets, cache)
        assert _same_as_a_parse(got, build_plan(pipeline, sets)), (name, sets)
    # training: a parse + a marked parse, again for the assets (raw_folder, not raw_file: another key); one pair
    # for each of the other two pipelines
    assert len(parsed) == 2 * 4


def test_the_pasting_check_does_not_depend_on_the_order_a_set_iterates() -> None:
    """Two equal sets may iterate in different orders (the order items went in; for text, the hash seed), and
    pickle writes a set in iteration order: the check compared pickles, so a pasted copy of a step's
    `optional_inputs` failed it in about half of all processes and the text input re-parsed every time."""
    import pickle

    one, other = {0, 8}, {8, 0}  # 0 and 8 share a slot of an 8-slot table: the first in keeps it
    assert one == other and list(one) != list(other)
    assert pickle.dumps(one) != pickle.dumps(other)
    assert pc._canonical({"optional": one}) == pc._canonical({"optional": other})
    assert pc._canonical({"optional": one}) != pc._canonical({"optional": {0, 9}})
    assert pc._canonical([1]) != pc._canonical([1.0]) != pc._canonical([True])


def test_text_values_are_pasted_whatever_the_hash_seed(tmp_path: Path) -> None:
    """pipelines/training.yml's data_uri and git_commit are kept as markers in processes with different string
    hash seeds (seeds 2-4 kept them as literals, re-parsing every new value)."""
    pipeline = REPO / "pipelines" / "training.yml"
    code = textwrap.dedent(
        """
        import pickle, sys
        from pathlib import Path
        from amlops.runner.plan_cache import cached_build_plan
        cache = Path(sys.argv[1])
        sets = {"raw_file": "a.parquet", "data_uri": "a.parquet", "git_commit": "abc"}
        cached_build_plan(Path(sys.argv[2]), sets, cache)
        print(sorted(pickle.loads(next(cache.glob("*.pickle")).read_bytes())["markers"]))
        """
    )
    for seed in ("2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "AMLOPS_PLAN_CACHE": "1"}
        cache = tmp_path / seed
        out = subprocess.run(
            [sys.executable, "-c", code, str(cache), str(pipeline)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=tmp_path,
        )
        assert out.stdout.strip().splitlines()[-1] == "['data_uri', 'git_commit']", seed


def test_a_retargeted_symlink_reparses(project: Path, tmp_path: Path) -> None:
    """A plan holds resolved paths: `path: ../data/current` with current -> week1, then -> week2 (a weekly data
    drop), or a component file that is a link. No file the parse read changed, yet a parse gives the new target:
    so does the cache (it served week1's data). A folder that becomes a link counts too."""
    data = project / "data"
    for week in ("week1", "week2", "week3"):
        (data / week).mkdir()
    (data / "current").symlink_to("week1")
    components = project / "components"
    (components / "count_v2.yml").write_text(
        (components / "count.yml").read_text().replace("python ", "python -X utf8 ", 1)
    )
    (components / "count_v1.yml").write_text((components / "count.yml").read_text())
    (components / "count_link.yml").symlink_to("count_v1.yml")
    pipeline = project / "pipelines" / "basic.yml"
    pipeline.write_text(
        pipeline.read_text()
        .replace("path: ../data/files", "path: ../data/current")
        .replace("component: ../components/count.yml", "component: ../components/count_link.yml")
    )
    cache = tmp_path / "plans"

    def served_equals_a_parse() -> Plan:
        got = pc.cached_build_plan(pipeline, {}, cache, tmp_path)
        assert _same_as_a_parse(got, build_plan(pipeline, {}, tmp_path))
        return got

    assert served_equals_a_parse().inputs["raw"] == PathValue(str(data / "week1"), "uri_folder")
    (data / "current").unlink()
    (data / "current").symlink_to("week2")
    assert served_equals_a_parse().inputs["raw"] == PathValue(str(data / "week2"), "uri_folder")
    (data / "current").unlink()
    (data / "current").mkdir()
    assert served_equals_a_parse().inputs["raw"] == PathValue(str(data / "current"), "uri_folder")
    (components / "count_link.yml").unlink()
    (components / "count_link.yml").symlink_to("count_v2.yml")
    assert "-X utf8" in (served_equals_a_parse().step("count_job").command or "")


@pytest.mark.parametrize("alter", [str.strip, str.lower, lambda text: text.replace("\\", "/")])
def test_a_parse_that_alters_text_in_a_way_the_first_value_hides_is_caught(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alter: Callable[[str], str]
) -> None:
    """The check pastes one real value ("a": stripping, lower-casing or turning backslashes leaves it as it is), so
    the marker must show the alteration (planted: the parse alters every string input). Each new value then
    re-parses and equals a parse (" B\\\\c " was served unaltered with a marker that had none of these)."""
    from amlops.runner import plan as plan_module

    real = plan_module.coerce_primitive

    def altering(value: Any, typ: str, what: str) -> Any:
        got = real(value, typ, what)
        return alter(got) if typ == "string" and isinstance(got, str) else got

    monkeypatch.setattr(plan_module, "coerce_primitive", altering)
    cache = tmp_path / "plans"
    pipeline = project / "pipelines" / "basic.yml"
    monkeypatch.chdir(tmp_path)
    for label in ("a", " B\\c "):
        got = pc.cached_build_plan(pipeline, {"raw": "data", "label": label}, cache)
        assert _same_as_a_parse(got, build_plan(pipeline, {"raw": "data", "label": label}))
        assert got.step("count_job").inputs["label"] == alter(label)
