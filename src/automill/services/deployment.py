"""DeployModel and UndeployModel.

DeployModel answers at once with a running Operation (the official client gives every AutoMl RPC
5 s), and the serving process loads the model in a background thread; the model becomes DEPLOYED
only when its files have loaded, in the transaction that ends the operation. Cheap checks (the
model exists, its files exist, ``node_count``) fail the request itself and change nothing.

The operation is leased like a worker's job, with the workers' short lease (``lease_seconds``, 10 s),
renewed every ``heartbeat_seconds`` by a thread of the serving process for as long as it loads. If
the serving process dies while loading, the lease runs out within seconds, the workers' sweep
requeues the operation and a worker finishes it with the ``deploy_model`` job
(services/handlers/deploy.py); predict then loads the model on first use.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automill.core.errors import AutomillError, FailedPrecondition, InvalidArgument, NotFound
from automill.jobs import queue
from automill.jobs.result import JobResult
from automill.jobs.states import JobState
from automill.services.operations import new_operation
from automill.services.render import OperationView, operation_view
from automill.store.db import new_etag, utcnow
from automill.store.tables import ModelRow, OperationRow

if TYPE_CHECKING:
    from automill.services.container import Services

log = logging.getLogger(__name__)

#: The first lease of a deploy, before its heartbeat thread runs; then the settings' ``lease_seconds``
#: (renewed every ``heartbeat_seconds``) while the serving process loads. A serving process that dies
#: stops renewing: the workers' sweep hands the deploy to a worker once the lease has run out.
DEPLOY_LEASE_SECONDS = 10.0


def _node_count(request: dict[str, Any]) -> str | None:
    meta = (
        request.get(
            "imageClassificationModelDeploymentMetadata", request.get("imageObjectDetectionModelDeploymentMetadata", {})
        )
        or {}
    )
    count = meta.get("nodeCount")
    if count in (None, ""):
        return None
    try:
        value = int(count)
    except (TypeError, ValueError):
        raise InvalidArgument(f"node_count {count!r} is not an integer", field="node_count") from None
    if not 1 <= value <= 100:
        raise InvalidArgument("node_count must be in 1..100", field="node_count")
    return str(value)


def _wanted_count(row: ModelRow, node_count: str | None) -> str | None:
    """The node count an image model will have once deployed (None for text models)."""
    if not row.problem_type.startswith("image_"):
        return None
    return node_count or row.problem_metadata.get("nodeCount") or "1"


def mark_deployed(s: Session, row: ModelRow, node_count: str | None) -> None:
    """Set DEPLOYED (and an image model's node count), with a new etag when anything changed."""
    if node_count is not None and row.problem_metadata.get("nodeCount") != node_count:
        row.problem_metadata = {**row.problem_metadata, "nodeCount": node_count}
        row.update_time = utcnow()
        row.etag = new_etag(row.id, row.update_time, "DEPLOYED", node_count)
    if row.deployment_state != "DEPLOYED":
        row.deployment_state = "DEPLOYED"
        row.update_time = utcnow()
        row.etag = new_etag(row.id, row.update_time, "DEPLOYED")


def cancel_pending_deploys(s: Session, name: str) -> None:
    """Cancel the deploys of model ``name`` still loading (undeploy, delete), after its row was locked.

    SKIP LOCKED: a deploy operation locked now is being ended by its load (``queue.complete`` locks
    the operation, then the model), which will wait for our model lock and see our change; waiting
    for it here would deadlock on PostgreSQL. SQLite ignores the clause (one writer at a time).
    """
    pending = (
        select(OperationRow)
        .where(
            OperationRow.kind == "deploy_model",
            OperationRow.works_on == name,
            OperationRow.state.in_([JobState.QUEUED, JobState.RUNNING]),
        )
        .with_for_update(skip_locked=True)
    )
    for op in s.execute(pending).scalars():
        queue.request_cancel(s, op)


class DeploymentService:
    def __init__(self, services: Services) -> None:
        self.sv = services
        self.owner = f"serving-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._threads: list[threading.Thread] = []

    def deploy(self, name: str, request: dict[str, Any]) -> OperationView:
        node_count = _node_count(request)
        with self.sv.db.tx() as s:
            row = self.sv.models.locked(s, name)  # after a delete: NOT_FOUND; a delete waits for this to commit
            if not Path(row.artifact_dir).is_dir():  # the message must not name the server's folders
                raise FailedPrecondition(f"the files of model {name} are missing")
            count = _wanted_count(row, node_count)
            common: dict[str, Any] = {
                "project": row.project,
                "location": row.location,
                "prefix": row.id[:3],
                "kind": "deploy_model",
                "details_key": "deployModelDetails",
                "works_on": name,
            }
            if row.deployment_state == "DEPLOYED" and (count is None or row.problem_metadata.get("nodeCount") == count):
                return operation_view(new_operation(s, **common, done=True))  # the same deployment again: a no-op
            op = new_operation(
                s,
                **common,
                request={"model": name, "node_count": count},
                limit=self.sv.settings.max_running_operations_per_project,
            )
            op.state, op.attempt, op.lease_owner = JobState.RUNNING, 1, self.owner
            op.lease_expires_at = time.time() + max(DEPLOY_LEASE_SECONDS, self.sv.settings.lease_seconds)
            op.progress_percent, op.stage = 5, "loading the model for serving"
            view = operation_view(op)
            job = (op.id, row.id, row.problem_type, Path(row.artifact_dir))
        thread = threading.Thread(target=self._load, args=(*job, name, count), name=f"deploy-{job[0]}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return view

    def _load(
        self, op_id: str, model_id: str, problem_type: str, model_dir: Path, name: str, count: str | None
    ) -> None:
        db = self.sv.db
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(op_id, stop), name=f"deploy-lease-{op_id}", daemon=True)
        beat.start()
        try:
            self.sv.serving.load(model_id, problem_type, model_dir)

            def commit(s: Session) -> None:
                # Locked: waits for a delete committing now, then finds no row (NotFound, handled below).
                mark_deployed(s, self.sv.models.locked(s, name), count)

            queue.complete(db, op_id, self.owner, 1, JobResult(commit=commit), [])
        except Exception as exc:
            code, message = self._load_error(name, model_id, model_dir, exc)
            queue.fail(db, op_id, code, message, owner=self.owner, attempt=1)
        finally:
            stop.set()
        if not self._model_exists(name):
            self.sv.serving.evict(model_id)  # loaded just as the model was deleted: serve nothing of it

    def _heartbeat(self, op_id: str, stop: threading.Event) -> None:
        """Renew the deploy's lease while its model loads; stop when the load ends or the lease was lost."""
        lease, every = self.sv.settings.lease_seconds, self.sv.settings.heartbeat_seconds
        while not stop.wait(every):
            try:
                ours, _ = queue.heartbeat(self.sv.db, op_id, self.owner, 1, lease)
            except Exception:
                log.warning("renewing the lease of deploy %s failed", op_id, exc_info=True)
                continue
            if not ours:
                return

    def _model_exists(self, name: str) -> bool:
        try:
            with self.sv.db.tx() as s:
                self.sv.models.row(s, name)
            return True
        except NotFound:
            return False

    def _load_error(self, name: str, model_id: str, model_dir: Path, exc: Exception) -> tuple[int, str]:
        """A failed load -> (code, message) for the operation; never a server path or an exception's text,
        which for file errors names the server's folders (the log keeps the details)."""
        if not self._model_exists(name):  # the delete removed its files while they were loading
            return NotFound.code, f"model {name} was deleted while it was being deployed"
        if not model_dir.is_dir():
            return FailedPrecondition.code, f"the files of model {name} are missing"
        log.error("deploying %s (%s) failed", name, model_id, exc_info=exc)
        if isinstance(exc, AutomillError):
            return exc.code, exc.message
        return (
            13,
            f"model {name} could not be loaded for serving ({type(exc).__name__}); the server log has the details",
        )

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait for the deploys this process started (used by tests)."""
        end = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, end - time.monotonic()))

    def undeploy(self, name: str) -> OperationView:
        with self.sv.db.tx() as s:
            row = self.sv.models.locked(s, name)
            cancel_pending_deploys(s, name)  # a deploy still loading must not redeploy after this
            if row.deployment_state != "UNDEPLOYED":
                row.deployment_state = "UNDEPLOYED"
                row.update_time = utcnow()
                row.etag = new_etag(row.id, row.update_time, "UNDEPLOYED")
            view = operation_view(
                new_operation(
                    s,
                    project=row.project,
                    location=row.location,
                    prefix=row.id[:3],
                    kind="undeploy_model",
                    details_key="undeployModelDetails",
                    works_on=name,
                    done=True,
                )
            )
            model_id = row.id
        self.sv.serving.evict(model_id)
        return view
