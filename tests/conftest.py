"""Shared fixtures: a real ``automill serve`` process on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()
DATASETS = SHARED / "datasets"
POSTGRES_ADMIN_URL = os.environ.get("AUTOMILL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    database_url: str
    port: int = field(default_factory=free_port)
    workers: int = 2
    #: The server's default text training budget: 10 milli node hours = 36 s keeps tests short.
    text_budget: int = 10
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    #: Extra AUTOMILL_* settings for this server.
    env: dict[str, str] = field(default_factory=dict)
    #: The gRPC port: 0 = none (the default here: no second port to collide), None = the server's
    #: default (the HTTP port + 1).
    grpc_port: int | None = 0
    #: A PEM certificate (for localhost) and its key: the server serves HTTPS and gRPC over TLS.
    tls: tuple[Path, Path] | None = None
    #: Extra command-line arguments of ``automill serve``.
    args: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.port + 1 if self.grpc_port is None else self.grpc_port}"

    def start(self, timeout: float = 60) -> Server:
        self.log_path = self.data_dir / f"server-{self.port}-{int(time.time() * 1000)}.log"
        env = {
            **os.environ,
            "AUTOMILL_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "AUTOMILL_TEXT_TRAIN_BUDGET_MILLI_NODE_HOURS": str(self.text_budget),
            **self.env,
        }
        cmd = [
            sys.executable,
            "-m",
            "automill",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--bucket",
            f"automill-bench={DATASETS}",
            "--workers",
            str(self.workers),
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        if self.grpc_port is not None:
            cmd += ["--grpc-port", str(self.grpc_port)]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        cmd += self.args
        with open(self.log_path, "wb") as log:  # the server keeps writing to its copy
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                verify = str(self.tls[0]) if self.tls else True
                if requests.get(f"{self.endpoint}/healthz", timeout=1, verify=verify).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL the server process alone (its workers die with it through PR_SET_PDEATHSIG)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def bucket_path(self, bucket: str) -> Path:
        return self.data_dir / "buckets" / bucket


@contextmanager
def serving(data_dir: Path, **kwargs: object) -> Iterator[Server]:
    """A real ``automill serve`` on a new data folder (SQLite unless ``database_url`` is given), stopped after."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    server = Server(data_dir=Path(data_dir), database_url=str(kwargs.pop("database_url", "")), **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    import psycopg

    name = f"automill_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the default run short: a test's PostgreSQL variant runs by default only where its module says
    PostgreSQL matters to it (``POSTGRES_IN_DEFAULT_RUN = True``: locking, leases, column sizes); elsewhere
    it runs under ``--slow``. A module may also name the parameter ids that run by default
    (``DEFAULT_RUN_IDS``); its other variants run under ``--slow``."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        module = getattr(item, "module", None)
        ids = getattr(module, "DEFAULT_RUN_IDS", None)
        if ids is not None:
            if callspec.id not in ids:
                item.add_marker(pytest.mark.slow)
        elif callspec.params.get("database_url") == "postgres" and not getattr(
            module, "POSTGRES_IN_DEFAULT_RUN", False
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Server]:
    """A real ``automill serve``; a test module may set ``TEXT_BUDGET`` (milli node hours) for it."""
    srv = Server(
        data_dir=tmp_path / "data",
        database_url=database_url,
        text_budget=getattr(request.module, "TEXT_BUDGET", Server.text_budget),
    )
    srv.data_dir.mkdir()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
