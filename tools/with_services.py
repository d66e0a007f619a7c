"""Start the services the tests need, run a command, stop the services — whatever the command's outcome.

    python tools/with_services.py -- pytest -q

Services, each on a free loopback port with its state in a temporary folder:
- Azurite (Azure Blob emulator, pinned in tools/node/package.json);
- an MLflow tracking server (SQLite backend) whose artifacts go to Azurite through `wasbs://`.
Their addresses reach the command as AMLOPS_TEST_AZURITE_CONNECTION_STRING and AMLOPS_TEST_MLFLOW_URI;
AMLOPS_REQUIRE_SERVICES=1 and AMLOPS_REQUIRE_TOOLS=1 make tests fail, not skip, when something is missing.
The command starts at once, beside the services' start-up: before using them it waits for the file named by
AMLOPS_TEST_SERVICES_READY to exist (tests/conftest.py does), or reads why they failed in AMLOPS_TEST_SERVICES_FAILED.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "tools" / "node" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_CONSTANTS = (
    ROOT
    / "tools"
    / "node"
    / "node_modules"
    / "azurite"
    / "dist"
    / "src"
    / "common"
    / "utils"
    / "constants.js"
)
AZURITE_ACCOUNT = "devstoreaccount1"
ARTIFACT_CONTAINER = "mlflow"


def azurite_key() -> str:
    """Azurite's public development key, read from the installed package rather than copied into this repo."""
    match = re.search(r'EMULATOR_ACCOUNT_KEY = Buffer\.from\("([^"]+)"', AZURITE_CONSTANTS.read_text())
    if not match:
        raise RuntimeError(f"cannot find the emulator account key in {AZURITE_CONSTANTS}")
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log {log}:\n{log.read_text()[-2000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f}s; log {log}:\n{log.read_text()[-2000:]}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def start_services(
    state: Path,
    blob_port: int,
    mlflow_port: int,
    conn: str,
    base_env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """Start Azurite, then the MLflow server on it; write READY when both answer, FAILED (the reason) if not."""
    try:
        azurite_log = state / "azurite.log"
        azurite = start(
            [
                str(AZURITE),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                "--location",
                str(state / "azurite"),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ],
            azurite_log,
            base_env,
        )
        procs.append(azurite)
        wait_for(lambda: port_open(blob_port), "Azurite", 60, azurite, azurite_log)
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(conn).create_container(ARTIFACT_CONTAINER)
        mlflow_log = state / "mlflow.log"
        mlflow = start(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--backend-store-uri",
                f"sqlite:///{state / 'mlflow.db'}",
                "--artifacts-destination",
                f"wasbs://{ARTIFACT_CONTAINER}@{AZURITE_ACCOUNT}.blob.core.windows.net/artifacts",
                "--workers",
                "1",
            ],
            mlflow_log,
            # MLflow 3.x servers start Huey job consumers (server-side jobs the tests never use) that take a
            # seventh of a core each, all run long: off (mlflow/environment_variables.py).
            {
                **base_env,
                "AZURE_STORAGE_CONNECTION_STRING": conn,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
        )
        procs.append(mlflow)
        wait_for(
            lambda: http_ok(f"http://127.0.0.1:{mlflow_port}/health"),
            "MLflow server",
            120,
            mlflow,
            mlflow_log,
        )
    except Exception as exc:  # any failure must reach the waiting tests, not die with this thread
        (state / "FAILED").write_text(f"{type(exc).__name__}: {exc}")
        return
    print(
        f"services: Azurite on 127.0.0.1:{blob_port}, MLflow on 127.0.0.1:{mlflow_port} (logs in {state})",
        flush=True,
    )
    (state / "READY").touch()


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: with_services.py -- COMMAND...", file=sys.stderr)
        return 2
    if not AZURITE.exists():
        print(f"error: {AZURITE} missing: run `make tools`", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="amlops-services-"))
    blob_port, mlflow_port = free_port(), free_port()
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={azurite_key()};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{AZURITE_ACCOUNT};"
    )
    base_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    procs: list[subprocess.Popen[bytes]] = []

    def terminated(signum: int, _frame: object) -> None:
        # A kill of this process (CI timeout, Ctrl-C in another terminal) must still stop the services, which run
        # in process groups of their own: unwind through `finally`.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    # The services start while the command starts (pytest's workers import and collect for as long as the MLflow
    # server takes to answer): their addresses are known up front (ports chosen here), and the tests that need them
    # wait for the READY file (tests/conftest.py), or fail with the reason written in FAILED.
    ready, failed = state / "READY", state / "FAILED"
    starter = threading.Thread(
        target=start_services, args=(state, blob_port, mlflow_port, conn, base_env, procs), daemon=True
    )
    env = {
        **base_env,
        "AMLOPS_TEST_AZURITE_CONNECTION_STRING": conn,
        "AMLOPS_TEST_MLFLOW_URI": f"http://127.0.0.1:{mlflow_port}",
        "AMLOPS_TEST_SERVICES_READY": str(ready),
        "AMLOPS_TEST_SERVICES_FAILED": str(failed),
        "AMLOPS_REQUIRE_SERVICES": "1",
        "AMLOPS_REQUIRE_TOOLS": "1",
    }
    try:
        starter.start()
        code = subprocess.call(argv, env=env)
        starter.join(
            timeout=200
        )  # a command quicker than the start-up: let it finish, so `finally` stops all
        if failed.exists():
            print(f"error: {failed.read_text()}", file=sys.stderr)
            return code or 1
        return code
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
