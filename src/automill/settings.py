"""One typed Settings object, read once from AUTOMILL_* environment variables and CLI flags.

Every default is documented where it is defined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from automill.core.errors import InvalidArgument
from automill.store.blobs import check_bucket_name


def parse_buckets(specs: list[str] | str | None) -> dict[str, str]:
    """``NAME=PATH[@PROJECT,...]`` items (a list, or one comma-separated string) -> {name: path}, where a
    granted bucket's path keeps its ``@PROJECT,...`` suffix (store.blobs reads the grants). NAME must be
    a valid bucket name (``--bucket ..=/srv`` would shadow the data folder's own files). In one string,
    a part without ``=`` continues the project list of the mapping before it:
    ``a=/srv/a@p1,p2,b=/srv/b`` grants ``a`` to p1 and p2."""
    if not specs:
        return {}
    items = specs.split(",") if isinstance(specs, str) else [p for spec in specs for p in spec.split(",")]
    out: dict[str, str] = {}
    last = ""
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, sep, path = item.partition("=")
        if not sep and last and "@" in out[last]:
            out[last] += f",{item}"  # another project granted the bucket before
            continue
        if not sep or not name or not path:
            raise InvalidArgument(
                f"bucket mapping {item!r} must look like NAME=PATH or NAME=PATH@PROJECT,...", field="bucket"
            )
        name = name.strip()
        check_bucket_name(name, f"bucket mapping {item!r}", field="bucket")
        out[name] = path.strip()
        last = name
    return out


@dataclass(frozen=True)
class Settings:
    #: Folder for the SQLite database, bucket folders, model artefacts.
    data_dir: Path = Path("./automill-data")
    #: SQLAlchemy URL; empty = SQLite file ``<data_dir>/automill.db``.
    database_url: str = ""
    #: gs:// bucket name -> local folder or fsspec URL (``s3://...``, ``gs://...``). Unmapped buckets
    #: live under ``<data_dir>/buckets/<name>``.
    buckets: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8080
    #: Worker processes started by ``automill serve`` (0 = run workers elsewhere: ``automill worker``).
    workers: int = 2
    #: Default training budget for text models, which have no budget field in Google's API.
    #: 1000 = one worker for one hour; 50 = 3 minutes.
    text_train_budget_milli_node_hours: int = 50
    #: Default training budget for image models when a request sets none. Google's default (24,000,
    #: a day of its accelerators) would be a day of CPU here; early stopping usually ends sooner.
    image_train_budget_milli_node_hours: int = 1000
    #: Caps every training's budget (0 = no cap): an administrator's quota. A request asking for more
    #: trains with the cap, and the model's trainBudgetMilliNodeHours says so.
    max_train_budget_milli_node_hours: int = 0
    #: A job lease; a worker renews it every ``heartbeat_seconds``. An expired lease means the
    #: worker died: the job is retried (up to ``max_attempts``) or failed.
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 1.0
    max_attempts: int = 2
    #: How often ``automill serve`` sweeps the data folder (after its sweep on start): files no row
    #: refers to, temporary folders of ended operations, unreferenced images (``automill check``).
    sweep_seconds: float = 600.0
    #: Host header values the server answers to besides its own address ("*" = any). Loopback
    #: servers answer to loopback names; a wildcard bind (0.0.0.0) with none set answers to any.
    allowed_hosts: tuple[str, ...] = ()
    #: Largest request body read (Google's API takes 40 MB); larger ones get 413 before being read.
    max_request_bytes: int = 40 * 1024 * 1024
    #: Operations :wait calls held at once; more get 429 RESOURCE_EXHAUSTED (poll GetOperation instead).
    max_concurrent_waits: int = 64
    #: Read deadlines against stalled clients (slowloris): the request head, a pause mid-body, a whole body.
    head_timeout_seconds: float = 10.0
    body_idle_timeout_seconds: float = 30.0
    body_timeout_seconds: float = 300.0
    #: Open connections at most; beyond, new ones get 503 at once.
    max_connections: int = 1000
    #: Requests a minute each API key may make (per API server process); beyond, 429 with Retry-After.
    #: 0 = unlimited. Anonymous callers of a keyless loopback server are not limited.
    max_requests_per_minute: int = 600
    #: Operations (imports, exports, trainings, deploys, batch predictions) a project may have queued or
    #: running at once; one more gets 429 RESOURCE_EXHAUSTED. 0 = unlimited.
    max_running_operations_per_project: int = 50
    #: Serve a non-loopback address while no API key exists (anyone who reaches the port is admin).
    #: Only the --insecure flag of ``automill serve`` sets it; the server logs a warning on every start.
    insecure: bool = False

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'automill.db').resolve()}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "AUTOMILL_DATA_DIR" in env:
            values["data_dir"] = Path(env["AUTOMILL_DATA_DIR"])
        if "AUTOMILL_DATABASE_URL" in env:
            values["database_url"] = env["AUTOMILL_DATABASE_URL"]
        if "AUTOMILL_BUCKETS" in env:
            values["buckets"] = parse_buckets(env["AUTOMILL_BUCKETS"])
        if "AUTOMILL_ALLOWED_HOSTS" in env:
            values["allowed_hosts"] = tuple(h.strip() for h in env["AUTOMILL_ALLOWED_HOSTS"].split(",") if h.strip())
        for key, conv in (
            ("host", str),
            ("port", int),
            ("workers", int),
            ("max_attempts", int),
            ("text_train_budget_milli_node_hours", int),
            ("image_train_budget_milli_node_hours", int),
            ("max_train_budget_milli_node_hours", int),
            ("lease_seconds", float),
            ("heartbeat_seconds", float),
            ("sweep_seconds", float),
            ("max_request_bytes", int),
            ("max_concurrent_waits", int),
            ("max_connections", int),
            ("max_requests_per_minute", int),
            ("max_running_operations_per_project", int),
            ("head_timeout_seconds", float),
            ("body_idle_timeout_seconds", float),
            ("body_timeout_seconds", float),
        ):
            name = f"AUTOMILL_{key.upper()}"
            if name in env:
                values[key] = conv(env[name])
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "buckets":
                merged = dict(values.get("buckets", {}))  # type: ignore[arg-type]
                merged.update(value)  # type: ignore[arg-type]
                value = merged
            values[key] = value
        values["data_dir"] = Path(values.get("data_dir", cls.data_dir)).resolve()  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment that makes a child process (a worker) read the same settings."""
        return {
            "AUTOMILL_DATA_DIR": str(self.data_dir.resolve()),
            "AUTOMILL_DATABASE_URL": self.database_url,
            "AUTOMILL_BUCKETS": ",".join(f"{k}={v}" for k, v in self.buckets.items()),
            "AUTOMILL_TEXT_TRAIN_BUDGET_MILLI_NODE_HOURS": str(self.text_train_budget_milli_node_hours),
            "AUTOMILL_IMAGE_TRAIN_BUDGET_MILLI_NODE_HOURS": str(self.image_train_budget_milli_node_hours),
            "AUTOMILL_LEASE_SECONDS": str(self.lease_seconds),
            "AUTOMILL_HEARTBEAT_SECONDS": str(self.heartbeat_seconds),
            "AUTOMILL_MAX_ATTEMPTS": str(self.max_attempts),
        }
