"""Online predict (in the serving process) and batch predict requests."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.services import validation
from automill.services.operations import new_operation
from automill.services.render import OperationView, operation_view
from automill.serving.predict import check_params, prepare  # shared with serve-model
from automill.store.blobs import split_gs

if TYPE_CHECKING:
    from automill.services.container import Services


class PredictionService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    def start(self, name: str, payload: dict[str, Any], params: dict[str, str]) -> Future[dict[str, Any]]:
        """Check one online prediction and queue it for its model (serving.batching: concurrent ones run
        as a batch); the future holds the PredictResponse (v1 JSON) or the error. Blocks for the model's
        row and the input's checks (an image is decoded), so callers on an event loop run it in a thread."""
        params = check_params(params)
        with self.sv.db.tx() as s:
            row = self.sv.models.row(s, name)
            if row.deployment_state != "DEPLOYED":
                raise FailedPrecondition(f"model {name} is not deployed: deploy it before calling predict")
            model_id, problem_type, model_dir = row.id, row.problem_type, Path(row.artifact_dir)
        prepared = prepare(problem_type, payload, params, read_pdf=self._read_pdf)
        queued = self.sv.serving.batcher(model_id, problem_type, model_dir).submit(prepared.data, prepared.params)
        if not prepared.extra:
            return queued
        answered: Future[dict[str, Any]] = Future()

        def done(f: Future[dict[str, Any]]) -> None:
            exc = f.exception()
            if exc is not None:
                answered.set_exception(exc)
            else:
                answered.set_result(prepared.answer(f.result()))

        queued.add_done_callback(done)
        return answered

    def predict(self, name: str, payload: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """``start`` and wait for the answer."""
        return self.start(name, payload, params).result()

    def _read_pdf(self, uri: str) -> bytes:
        from automill.problems.text_extraction.pdf import MAX_PDF_BYTES

        return self.sv.blobs.read_bytes(uri, max_bytes=MAX_PDF_BYTES)

    def batch_predict(
        self, name: str, input_config: dict[str, Any], output_config: dict[str, Any], params: dict[str, str]
    ) -> OperationView:
        params = check_params(params)
        uris = list((input_config.get("gcsSource") or {}).get("inputUris") or [])
        if not uris:
            raise InvalidArgument("input_config.gcs_source.input_uris is required", field="input_config.gcs_source")
        for uri in uris:
            split_gs(uri)
            self.sv.blobs.resolve(uri)
        prefix = validation.output_prefix(output_config, self.sv.blobs)
        with self.sv.db.tx() as s:
            row = self.sv.models.row(s, name)
            params = check_params(params, row.problem_type)  # here, not only in the worker: no doomed operation
            op = new_operation(
                s,
                project=row.project,
                location=row.location,
                prefix=row.id[:3],
                kind="batch_predict",
                limit=self.sv.settings.max_running_operations_per_project,
                details_key="batchPredictDetails",
                works_on=name,
                result_type="BatchPredictResult",
                details={"inputConfig": input_config},
                max_attempts=self.sv.settings.max_attempts,
                request={"model": name, "input_uris": uris, "output_uri_prefix": prefix, "params": params},
            )
            return operation_view(op)
