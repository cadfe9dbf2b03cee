"""Online predict (in the serving process) and batch predict requests."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, TYPE_CHECKING

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.problems.text_classification.problem import MAX_PREDICT_CHARS
from automill.services import validation
from automill.services.operations import new_operation
from automill.services.render import OperationView, operation_view
from automill.store.blobs import split_gs

if TYPE_CHECKING:
    from automill.services.container import Services

MAX_PARAM_CHARS = 25_000


def check_params(params: dict[str, str], problem_type: str | None = None) -> dict[str, str]:
    """The request's ``params`` as strings; with ``problem_type``, also the values that problem reads,
    by the rules its ``predict`` (and so the batch worker) applies: problems/params.py."""
    for key, value in params.items():
        if len(str(value)) > MAX_PARAM_CHARS:
            raise InvalidArgument(f"params.{key} is over {MAX_PARAM_CHARS} characters", field=f"params.{key}")
    out = {k: str(v) for k, v in params.items()}
    if problem_type is not None:
        from automill.problems.base import get_problem
        from automill.problems.params import check_predict_params

        check_predict_params(get_problem(problem_type), out)
    return out


class PredictionService:
    def __init__(self, services: "Services") -> None:
        self.sv = services

    def predict(self, name: str, payload: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        params = check_params(params)
        with self.sv.db.tx() as s:
            row = self.sv.models.row(s, name)
            if row.deployment_state != "DEPLOYED":
                raise FailedPrecondition(f"model {name} is not deployed: deploy it before calling predict")
            model_id, problem_type, model_dir = row.id, row.problem_type, Path(row.artifact_dir)
        params = check_params(params, problem_type)
        if problem_type.startswith("image_"):
            return self._predict_image(model_id, problem_type, model_dir, payload, params)
        document, payload_input = None, None
        if "document" in payload and problem_type == "text_extraction":
            payload_input = payload["document"].get("inputConfig", {})
            document = self._document(payload["document"])
            payload = {"textSnippet": {"content": document["documentText"]["content"]}}
        snippet = payload.get("textSnippet")
        if snippet is None:
            raise InvalidArgument("payload.text_snippet is required for a text model",
                                  field="payload.text_snippet")
        content = snippet.get("content", "")
        if not content.strip():
            raise InvalidArgument("payload.text_snippet.content is empty", field="payload.text_snippet.content")
        if len(content) > MAX_PREDICT_CHARS:
            raise InvalidArgument(f"payload.text_snippet.content is {len(content)} characters, over the limit of "
                                  f"{MAX_PREDICT_CHARS}", field="payload.text_snippet.content")
        loaded = self.sv.serving.load(model_id, problem_type, model_dir)
        from automill.problems.base import get_problem

        response = get_problem(problem_type).predict_one(loaded, content, params)
        if document is not None:
            response["preprocessedInput"] = {"document": {**document, "inputConfig": payload_input}}
        return response

    def _predict_image(self, model_id: str, problem_type: str, model_dir: Path, payload: dict[str, Any],
                       params: dict[str, str]) -> dict[str, Any]:
        from automill.problems.base import get_problem
        from automill.problems.image_classification.images import MAX_IMAGE_BYTES

        raw = (payload.get("image") or {}).get("imageBytes")
        if not raw:
            raise InvalidArgument("payload.image.image_bytes is required for an image model", field="payload.image.image_bytes")
        if len(raw) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise InvalidArgument(f"payload.image.image_bytes is over the limit of {MAX_IMAGE_BYTES} bytes (30 MB)",
                                  field="payload.image.image_bytes")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("payload.image.image_bytes is not valid base64", field="payload.image.image_bytes") from None
        problem = get_problem(problem_type)
        problem.check_input(data, "payload.image.image_bytes")
        loaded = self.sv.serving.load(model_id, problem_type, model_dir)
        return problem.predict_one(loaded, data, params)  # type: ignore[arg-type]

    def _document(self, document: dict[str, Any]) -> dict[str, Any]:
        """A ``document`` payload: the PDF named by input_config, or the given document_text."""
        from automill.problems.text_extraction.pdf import MAX_PDF_BYTES, extract_document

        if (document.get("documentText") or {}).get("content"):
            return {"documentText": {"content": document["documentText"]["content"], "mimeType": "text/plain"}}
        uris = (document.get("inputConfig", {}).get("gcsSource") or {}).get("inputUris") or []
        if len(uris) != 1:
            raise InvalidArgument("payload.document.input_config.gcs_source.input_uris must hold one gs:// PDF path",
                                  field="payload.document.input_config")
        return extract_document(self.sv.blobs.read_bytes(uris[0], max_bytes=MAX_PDF_BYTES), uris[0])

    def batch_predict(self, name: str, input_config: dict[str, Any], output_config: dict[str, Any],
                      params: dict[str, str]) -> OperationView:
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
            op = new_operation(s, project=row.project, location=row.location, prefix=row.id[:3], kind="batch_predict",
                               details_key="batchPredictDetails", works_on=name, result_type="BatchPredictResult",
                               details={"inputConfig": input_config},
                               max_attempts=self.sv.settings.max_attempts,
                               request={"model": name, "input_uris": uris, "output_uri_prefix": prefix, "params": params})
            return operation_view(op)
