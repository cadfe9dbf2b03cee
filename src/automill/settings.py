"""One typed Settings object, read once from AUTOMILL_* environment variables and CLI flags.

Every default is documented where it is defined.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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


_EMAIL = re.compile(r"^[^@\s,;<>()\"\\\x00-\x1f\x7f]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")


def parse_targets(specs: list[str] | str | None, kind: str) -> dict[str, tuple[str, ...]]:
    """``PROJECT=VALUE[,VALUE]`` items (a list, or one string with ``;`` between projects) -> {project:
    values}, for ``--notify-email`` (``kind`` "email": addresses) and ``--webhook`` ("webhook": http(s)
    URLs). PROJECT ``*`` means every project. A value that is no address or http(s) URL is refused."""
    if not specs:
        return {}
    items = specs.split(";") if isinstance(specs, str) else list(specs)
    flag = "notify-email" if kind == "email" else "webhook"
    out: dict[str, tuple[str, ...]] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        project, sep, rest = item.partition("=")
        values = [v.strip() for v in (rest.split(",") if kind == "email" else [rest]) if v.strip()]
        if not sep or not project.strip() or not values:
            raise InvalidArgument(f"--{flag} {item[:100]!r} must look like PROJECT=VALUE", field=flag)
        for v in values:
            if kind == "email" and not _EMAIL.match(v):
                raise InvalidArgument(f"--{flag} {v[:100]!r} is not an e-mail address", field=flag)
            if kind == "webhook":
                parts = urlsplit(v)
                if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in v):
                    raise InvalidArgument(f"--{flag} {v[:100]!r} must be an http:// or https:// URL", field=flag)
        key = project.strip()
        out[key] = (*out.get(key, ()), *values)
    return out


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


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
    #: The gRPC port (the same API over gRPC, the official clients' default transport); None = the HTTP
    #: port + 1, 0 = no gRPC.
    grpc_port: int | None = None
    #: A PEM certificate chain and its key: both ports serve TLS (HTTPS and gRPC over TLS) when set.
    tls_cert: str = ""
    tls_key: str = ""
    #: Online predict batches concurrent requests to one deployed model: requests that arrive while it is
    #: busy run together as its next batch, and a request that finds it idle waits this long for others
    #: to join (0 = none: a lone caller never waits). A batch holds at most ``predict_max_batch``
    #: requests (1 = no batching).
    predict_batch_wait_ms: float = 0.0
    predict_max_batch: int = 32
    #: The project and location whose datasets page the web console opens at ``/`` (a key scoped to one
    #: project opens that project instead).
    console_project: str = "my-project"
    console_location: str = "us-central1"
    #: Uploads to a bucket folder (``POST /upload/v1/...``, the console's "upload files"): the largest
    #: file and the largest total one request may carry; beyond, 413.
    max_upload_file_bytes: int = 100 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    #: Downloads of a bucket folder as one zip (``GET /download/v1/...?alt=zip``, the console's "Download
    #: zip"): the most bytes its files may hold in all; beyond, 400 FAILED_PRECONDITION.
    max_download_bytes: int = 2 * 1024 * 1024 * 1024
    #: The address people open the server at, for the links in notifications (e.g.
    #: https://automill.example.com, with the path prefix if any); empty = http://HOST:PORT.
    public_url: str = ""
    #: Notifications when a training, import, export or batch prediction ends (services.notify). The SMTP
    #: server: smtp://[user[:password]@]host[:port] (upgraded with STARTTLS when smtp_starttls) or
    #: smtps://... (TLS from the start); empty = no e-mail.
    smtp_url: str = field(default="", repr=False)
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    #: project ("*": every project) -> the e-mail addresses told, and the URLs each ended operation is POSTed to.
    notify_email: dict[str, tuple[str, ...]] = field(default_factory=dict)
    webhooks: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def grpc_listen_port(self) -> int:
        """The gRPC port to listen on (0: none)."""
        return self.port + 1 if self.grpc_port is None else self.grpc_port

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
        if "AUTOMILL_NOTIFY_EMAIL" in env:
            values["notify_email"] = parse_targets(env["AUTOMILL_NOTIFY_EMAIL"], "email")
        if "AUTOMILL_WEBHOOKS" in env:
            values["webhooks"] = parse_targets(env["AUTOMILL_WEBHOOKS"], "webhook")
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
            ("grpc_port", int),
            ("tls_cert", str),
            ("tls_key", str),
            ("predict_batch_wait_ms", float),
            ("predict_max_batch", int),
            ("console_project", str),
            ("console_location", str),
            ("max_upload_file_bytes", int),
            ("max_upload_bytes", int),
            ("max_download_bytes", int),
            ("public_url", str),
            ("smtp_url", str),
            ("smtp_from", str),
            ("smtp_starttls", _flag),
            ("smtp_user", str),
            ("smtp_password", str),
        ):
            name = f"AUTOMILL_{key.upper()}"
            if name in env:
                values[key] = conv(env[name])
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "buckets" and isinstance(value, dict):
                earlier = values.get("buckets")
                value = {**(earlier if isinstance(earlier, dict) else {}), **value}
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
