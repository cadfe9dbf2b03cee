"""Online predict (in the serving process) and batch predict requests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.services import validation
from automill.services.operations import new_operation
from automill.services.render import OperationView, operation_view
from automill.serving.predict import MAX_PARAM_CHARS, check_params, predict_payload  # noqa: F401 - shared with serve-model
from automill.store.blobs import split_gs

if TYPE_CHECKING:
    from automill.services.container import Services


class PredictionService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    def predict(self, name: str, payload: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        params = check_params(params)
        with self.sv.db.tx() as s:
            row = self.sv.models.row(s, name)
            if row.deployment_state != "DEPLOYED":
                raise FailedPrecondition(f"model {name} is not deployed: deploy it before calling predict")
            model_id, problem_type, model_dir = row.id, row.problem_type, Path(row.artifact_dir)
        return predict_payload(
            problem_type,
            payload,
            params,
            load=lambda: self.sv.serving.load(model_id, problem_type, model_dir),
            read_pdf=self._read_pdf,
        )

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
