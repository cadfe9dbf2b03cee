"""``automill``: serve, worker, migrate, and a small client for the REST API."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import typer

from automill.cli import client
from automill.cli.commands.check import check
from automill.cli.commands.keys import audit, keys
from automill.core.errors import AutomillError
from automill.settings import Settings, parse_buckets, parse_targets

app = typer.Typer(help="Automill: self-hosted AutoML with the Google Cloud AutoML API.", no_args_is_help=True)
app.add_typer(client.config, name="config")
app.add_typer(client.datasets, name="datasets")
app.add_typer(client.annotation_specs, name="annotation-specs")
app.add_typer(client.models, name="models")
app.add_typer(client.evaluations, name="evaluations")
app.add_typer(client.operations, name="operations")
app.command("predict")(client.predict)
app.command("check")(check)
app.add_typer(keys, name="keys")
app.command("audit")(audit)

BUCKET_HELP = (
    "Map gs://NAME to a folder or fsspec URL: NAME=PATH, or NAME=PATH@PROJECT,... to grant it to those "
    "projects only (repeatable; env AUTOMILL_BUCKETS=N=P,N2=P2)."
)


def _settings(data_dir: Path | None, database_url: str | None, bucket: list[str] | None, **extra: object) -> Settings:
    return Settings.from_env(
        data_dir=data_dir, database_url=database_url, buckets=parse_buckets(bucket) if bucket else None, **extra
    )


#: Library notices that every job loading a model would repeat and that say nothing about Automill:
#: torchao's CUDA-only kernels that cannot load on a CPU machine and its Triton note, torch's note
#: on torchao's enums, alembic's list of its plugins. Their errors still show.
QUIET_LOGGERS = {
    "torchao": logging.ERROR,
    "torch.utils._pytree": logging.ERROR,
    "alembic.runtime.plugins": logging.WARNING,
}


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("AUTOMILL_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # AUTOMILL_LOG_LEVEL=DEBUG shows them
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)
    # transformers draws a progress bar (carriage returns) each time it loads the encoder's weights;
    # in a service log that is noise. Worker processes inherit the setting.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (env AUTOMILL_HOST, default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (env AUTOMILL_PORT, default 8080)."),
    data_dir: Path | None = typer.Option(None, help="Data folder (env AUTOMILL_DATA_DIR, default ./automill-data)."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env AUTOMILL_DATABASE_URL; default SQLite in the data dir)."
    ),
    bucket: list[str] | None = typer.Option(None, "--bucket", help=BUCKET_HELP),
    workers: int | None = typer.Option(
        None, help="Local worker processes (env AUTOMILL_WORKERS, default 2; 0 = none)."
    ),
    allowed_host: list[str] | None = typer.Option(
        None,
        "--allowed-host",
        help="A Host name clients use to reach the server, e.g. automill.example.com "
        "(repeatable; env AUTOMILL_ALLOWED_HOSTS=a,b; '*' = any).",
    ),
    max_request_bytes: int | None = typer.Option(
        None, help="Largest request body in bytes (env AUTOMILL_MAX_REQUEST_BYTES, default 41943040 = 40 MB)."
    ),
    max_train_budget_milli_node_hours: int | None = typer.Option(
        None, help="Cap on every training's budget (env AUTOMILL_MAX_TRAIN_BUDGET_MILLI_NODE_HOURS; 0 = none)."
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Serve a non-loopback --host while no API key exists: anyone who reaches the "
        "port can do everything. Without it such a server refuses to start (create a key: automill keys create).",
    ),
    grpc_port: int | None = typer.Option(
        None, help="gRPC port: the same API over gRPC (env AUTOMILL_GRPC_PORT; default the HTTP port + 1; 0 = off)."
    ),
    tls_cert: str | None = typer.Option(
        None, help="PEM certificate chain: HTTPS and gRPC over TLS on both ports (env AUTOMILL_TLS_CERT)."
    ),
    tls_key: str | None = typer.Option(None, help="PEM private key of --tls-cert (env AUTOMILL_TLS_KEY)."),
    predict_batch_wait_ms: float | None = typer.Option(
        None,
        help="Online predict: how long a request may wait for others to batch with "
        "(env AUTOMILL_PREDICT_BATCH_WAIT_MS, default 0: requests that arrive while the model is busy batch anyway).",
    ),
    predict_max_batch: int | None = typer.Option(
        None, help="Online predict: most requests run as one batch (env AUTOMILL_PREDICT_MAX_BATCH, default 32)."
    ),
    max_upload_bytes: int | None = typer.Option(
        None, help="Largest upload to a bucket folder, in bytes (env AUTOMILL_MAX_UPLOAD_BYTES, default 1 GiB)."
    ),
    max_upload_file_bytes: int | None = typer.Option(
        None, help="Largest file of an upload, in bytes (env AUTOMILL_MAX_UPLOAD_FILE_BYTES, default 100 MiB)."
    ),
    public_url: str | None = typer.Option(
        None, help="The address people open the server at, for links in notifications (env AUTOMILL_PUBLIC_URL)."
    ),
    smtp_url: str | None = typer.Option(
        None,
        help="SMTP server for e-mail notifications: smtp://[user[:password]@]host[:port] or smtps://... "
        "(env AUTOMILL_SMTP_URL; password also AUTOMILL_SMTP_PASSWORD).",
    ),
    smtp_from: str | None = typer.Option(None, help="Sender of notification e-mails (env AUTOMILL_SMTP_FROM)."),
    smtp_starttls: bool | None = typer.Option(
        None, "--smtp-starttls", help="Upgrade the smtp:// connection with STARTTLS (env AUTOMILL_SMTP_STARTTLS=1)."
    ),
    smtp_user: str | None = typer.Option(None, help="SMTP login (env AUTOMILL_SMTP_USER)."),
    notify_email: list[str] | None = typer.Option(
        None,
        "--notify-email",
        help="E-mail PROJECT's ended trainings, imports, exports and batch predictions: PROJECT=addr[,addr] "
        "('*' = every project; repeatable; env AUTOMILL_NOTIFY_EMAIL=p=a@x;q=b@y).",
    ),
    webhook: list[str] | None = typer.Option(
        None,
        "--webhook",
        help="POST each ended operation of PROJECT as JSON to URL: PROJECT=URL (http or https; '*' = every "
        "project; repeatable; env AUTOMILL_WEBHOOKS=p=URL;q=URL).",
    ),
) -> None:
    """Run the API server (and local workers) on embedded defaults: SQLite + local folders.

    While no API key exists, a server on a loopback address serves anyone on this machine; once one
    exists (automill keys create), every API request needs a key, and a non-loopback --host needs one
    to start at all (or --insecure)."""
    from automill.api import server
    from automill.core.net import is_loopback
    from automill.services.container import Services
    from automill.services.keys import keys_exist

    _logging()
    settings = _settings(
        data_dir,
        database_url,
        bucket,
        host=host,
        port=port,
        workers=workers,
        allowed_hosts=tuple(allowed_host) if allowed_host else None,
        max_request_bytes=max_request_bytes,
        max_train_budget_milli_node_hours=max_train_budget_milli_node_hours,
        insecure=insecure,
        grpc_port=grpc_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        predict_batch_wait_ms=predict_batch_wait_ms,
        predict_max_batch=predict_max_batch,
        max_upload_bytes=max_upload_bytes,
        max_upload_file_bytes=max_upload_file_bytes,
        public_url=public_url,
        smtp_url=smtp_url,
        smtp_from=smtp_from,
        smtp_starttls=smtp_starttls,
        smtp_user=smtp_user,
        notify_email=_targets(notify_email, "email"),
        webhooks=_targets(webhook, "webhook"),
    )
    try:
        server.tls_files(settings.tls_cert, settings.tls_key)
    except ValueError as exc:
        logging.getLogger("automill").error("%s", exc)
        raise typer.Exit(2) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = Services(settings)
    services.db.migrate()
    main_log = logging.getLogger("automill")
    if not is_loopback(settings.host) and not keys_exist(services.db):
        if not insecure:
            main_log.error(
                "refusing to serve %s: it is not a loopback address and no API key exists, so anyone who "
                "reaches the port could use every project. Create a key first (automill keys create "
                "--project '*' --role admin), or serve 127.0.0.1 behind a proxy, or pass --insecure.",
                settings.host,
            )
            raise typer.Exit(2)
        main_log.warning(
            "INSECURE: serving %s without API keys (--insecure): anyone who reaches port %d can read, "
            "change and delete every project. Create a key (automill keys create) to require one.",
            settings.host,
            settings.port,
        )
    elif insecure:
        main_log.warning(
            "--insecure has no effect: %s",
            "API keys exist, so every request needs one"
            if keys_exist(services.db)
            else "the server is on a loopback address",
        )
    procs = [_spawn_worker(settings) for _ in range(settings.workers)]
    from automill.services.housekeeping import Sweeper

    Sweeper(services.db, settings.data_dir, settings.sweep_seconds).start()  # on start, then periodically
    from automill.services.notify import Notifier

    try:
        Notifier(services.db, settings).start()  # e-mails and webhooks when operations end
    except AutomillError as exc:
        main_log.error("%s", exc)
        raise typer.Exit(2) from None
    main_log.info(
        "serving on %s://%s:%d (data in %s, %d workers)",
        "https" if settings.tls_cert else "http",
        settings.host,
        settings.port,
        settings.data_dir.resolve(),
        len(procs),
    )
    try:
        server.serve(services)  # REST and gRPC
    except RuntimeError as exc:
        main_log.error("%s", exc)
        raise typer.Exit(2) from None
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _targets(specs: list[str] | None, kind: str) -> dict[str, tuple[str, ...]] | None:
    """--notify-email / --webhook values, or exit with the reason they are refused."""
    if not specs:
        return None
    try:
        return parse_targets(specs, kind)
    except AutomillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _spawn_worker(settings: Settings) -> subprocess.Popen[bytes]:
    from automill.jobs.worker import die_with_parent

    env = {**os.environ, **settings.to_env()}
    return subprocess.Popen([sys.executable, "-m", "automill", "worker"], env=env, preexec_fn=die_with_parent)


@app.command()
def worker(
    data_dir: Path | None = typer.Option(None, help="Data folder (env AUTOMILL_DATA_DIR)."),
    database_url: str | None = typer.Option(None, help="SQLAlchemy URL (env AUTOMILL_DATABASE_URL)."),
    bucket: list[str] | None = typer.Option(None, "--bucket", help=BUCKET_HELP),
) -> None:
    """Run one worker process: claims operations from the database and executes them."""
    from automill.jobs.worker import Worker
    from automill.services.container import services_factory
    from automill.store.db import Database

    _logging()
    settings = _settings(data_dir, database_url, bucket)
    make = services_factory(settings)
    make()  # import the job handlers once; each job forks from here and imports the ML libraries it needs
    w = Worker(
        Database(settings.db_url),
        make,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
    w.run_forever()


@app.command("serve-model")
def serve_model(
    folder: Path = typer.Argument(
        ..., help="A folder written by `automill models export MODEL gs://... --format docker`."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8081, help="Port."),
) -> None:
    """Serve an exported model's :predict (no database, no docker). Example: automill serve-model ./model-export-x"""
    from automill.api.standalone import serve

    _logging()
    serve(folder, host=host, port=port)


@app.command()
def migrate(
    data_dir: Path | None = typer.Option(None),
    database_url: str | None = typer.Option(None),
) -> None:
    """Create or upgrade the database schema (serve does this on start)."""
    from automill.store.db import Database

    settings = _settings(data_dir, database_url, None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Database(settings.db_url).migrate()
    typer.echo(f"database at {settings.db_url} is up to date")


if __name__ == "__main__":
    app()
