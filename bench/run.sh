#!/usr/bin/env bash
# `make bench`: every benchmark section in turn. Each section is its own script; add new ones at the end.
# Peers run in their own venvs (bench/.venv-<tool>), created from fully pinned requirement files (uv pip compile).
set -euo pipefail
cd "$(dirname "$0")/.."
export DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true NML_DISABLE_USAGE_LOGGING=1
UV="${UV:-$(command -v uv || echo tools/.venv-uv/bin/uv)}"

# A peer venv, rebuilt when its requirements file changes. BENCH_SKIP_PEERS=1 skips them.
peer_venv() {
  local name="$1" req="bench/requirements-$1.txt" venv="bench/.venv-$1"
  local stamp="$venv/.requirements.sha256"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "bench: creating $venv from $req"
    "$UV" venv --quiet --allow-existing --python 3.11 "$venv"
    "$UV" pip install --quiet --python "$venv/bin/python" -r "$req"
    echo "$want" > "$stamp"
  fi
}

if [[ "${BENCH_SKIP_PEERS:-0}" != "1" ]]; then
  peer_venv evidently
  peer_venv nannyml
fi

# 1. The monitor: amlops vs Evidently vs NannyML vs a read-once floor (+ the 100M-row streamed case).
.venv/bin/python bench/monitor_bench.py

# 2. Scoring overhead: the batch scoring step vs the bare model.predict on the same 1M rows.
.venv/bin/python bench/scoring_bench.py

# 3. Whole commands (issue 20): `amlops monitor` / `amlops run` / `amlops demo` / build_profile as a user waits
#    for them, interleaved with a baseline source tree so the table holds both, measured in the same run:
#    BENCH_WHOLE_BASELINE (a folder), else the commit BENCH_WHOLE_BASELINE_REF (default: main before the issue 20
#    work, f1d4951) exported with `git archive` into $TMPDIR/amlops-bench-baseline-<commit>; BENCH_WHOLE_BASELINE_REF=none: no
#    baseline column.
if [[ -z "${BENCH_WHOLE_BASELINE:-}" && "${BENCH_WHOLE_BASELINE_REF:-f1d4951}" != "none" ]]; then
  ref="$(git rev-parse --short "${BENCH_WHOLE_BASELINE_REF:-f1d4951}^{commit}" 2>/dev/null || true)"
  if [[ -n "$ref" ]]; then
    export BENCH_WHOLE_BASELINE="${TMPDIR:-/tmp}/amlops-bench-baseline-$ref"
    if [[ ! -f "$BENCH_WHOLE_BASELINE/pyproject.toml" ]]; then
      mkdir -p "$BENCH_WHOLE_BASELINE"
      git archive "$ref" | tar -x -C "$BENCH_WHOLE_BASELINE"
    fi
  else
    echo "bench: no commit ${BENCH_WHOLE_BASELINE_REF:-f1d4951} here (a shallow clone?): whole commands without a baseline"
  fi
fi
.venv/bin/python bench/whole_bench.py

# 4. Error estimation before labels and multivariate drift: accuracy under covariate shift, interval coverage,
#    false alarms vs the univariate metrics, cost added to the monitor at 1M rows.
.venv/bin/python bench/estimate_bench.py

# 5. Monitoring past one machine (issue 19): map-reduce (parallel map, 2 workers + merge) vs the single process on
#    100M rows, identical results, and the cost of merging 1,000 partials.
.venv/bin/python bench/mapreduce_bench.py
