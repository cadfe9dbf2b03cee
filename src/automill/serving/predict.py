"""One online prediction: a PredictRequest's payload and params -> its PredictResponse (v1 JSON).

Shared by the full server (services/predictions.py: a deployed model from the cache) and the server
of an exported model (api/standalone.py, ``automill serve-model``), so both check a request and
answer it the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from automill.core.errors import InvalidArgument

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


def predict_payload(
    problem_type: str,
    payload: dict[str, Any],
    params: dict[str, str],
    load: Callable[[], Any],
    read_pdf: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """Check ``payload`` (v1 JSON of ExamplePayload) and ``params`` for ``problem_type``, then predict
    with the model ``load()`` returns (called only once the request is known to be good).
    ``read_pdf(gs_uri)`` reads the PDF of a ``document`` payload (at most MAX_PDF_BYTES); without it
    such payloads are refused."""
    from automill.problems.base import get_problem
    from automill.problems.text_classification.problem import MAX_PREDICT_CHARS

    params = check_params(params, problem_type)
    problem = get_problem(problem_type)
    if problem_type.startswith("image_"):
        data = _image_bytes(payload)
        problem.check_input(data, "payload.image.image_bytes")  # type: ignore[attr-defined]
        return problem.predict_one(load(), data, params)  # type: ignore[arg-type]
    document, payload_input = None, None
    if "document" in payload and problem_type == "text_extraction":
        payload_input = payload["document"].get("inputConfig", {})
        document = _document(payload["document"], read_pdf)
        payload = {"textSnippet": {"content": document["documentText"]["content"]}}
    snippet = payload.get("textSnippet")
    if snippet is None:
        raise InvalidArgument("payload.text_snippet is required for a text model", field="payload.text_snippet")
    content = snippet.get("content", "")
    if not content.strip():
        raise InvalidArgument("payload.text_snippet.content is empty", field="payload.text_snippet.content")
    if len(content) > MAX_PREDICT_CHARS:
        raise InvalidArgument(
            f"payload.text_snippet.content is {len(content)} characters, over the limit of {MAX_PREDICT_CHARS}",
            field="payload.text_snippet.content",
        )
    response = problem.predict_one(load(), content, params)
    if document is not None:
        response["preprocessedInput"] = {"document": {**document, "inputConfig": payload_input}}
    return response


def _image_bytes(payload: dict[str, Any]) -> bytes:
    from automill.problems.image_classification.images import MAX_IMAGE_BYTES

    raw = (payload.get("image") or {}).get("imageBytes")
    if not raw:
        raise InvalidArgument(
            "payload.image.image_bytes is required for an image model", field="payload.image.image_bytes"
        )
    if len(raw) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InvalidArgument(
            f"payload.image.image_bytes is over the limit of {MAX_IMAGE_BYTES} bytes (30 MB)",
            field="payload.image.image_bytes",
        )
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(
            "payload.image.image_bytes is not valid base64", field="payload.image.image_bytes"
        ) from None


def _document(document: dict[str, Any], read_pdf: Callable[[str], bytes] | None) -> dict[str, Any]:
    """A ``document`` payload: the PDF named by input_config, or the given document_text."""
    from automill.problems.text_extraction.pdf import extract_document

    if (document.get("documentText") or {}).get("content"):
        return {"documentText": {"content": document["documentText"]["content"], "mimeType": "text/plain"}}
    uris = (document.get("inputConfig", {}).get("gcsSource") or {}).get("inputUris") or []
    if len(uris) != 1:
        raise InvalidArgument(
            "payload.document.input_config.gcs_source.input_uris must hold one gs:// PDF path",
            field="payload.document.input_config",
        )
    if read_pdf is None:
        raise InvalidArgument(
            "this server reads no buckets: send the document's text in "
            "payload.document.document_text.content or payload.text_snippet",
            field="payload.document.input_config",
        )
    return extract_document(read_pdf(uris[0]), uris[0])
