"""One online prediction: a PredictRequest's payload and params -> its PredictResponse (v1 JSON).

Shared by the full server (services/predictions.py: a deployed model from the cache) and the server
of an exported model (api/standalone.py, ``automill serve-model``), so both check a request and
answer it the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
        from automill.problems.params import check_predict_params
        from automill.problems.registry import get_problem

        check_predict_params(get_problem(problem_type), out)
    return out


@dataclass
class Prepared:
    """A checked request: the model's input (a text, or an image's bytes), its params, and what the
    response carries besides the model's answer (the document a PDF payload was read into)."""

    data: Any
    params: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        return {**response, **self.extra} if self.extra else response


def prepare(
    problem_type: str,
    payload: dict[str, Any],
    params: dict[str, str],
    read_pdf: Callable[[str], bytes] | None = None,
) -> Prepared:
    """Check ``payload`` (v1 JSON of ExamplePayload; ``image.imageBytes`` as base64 or as the bytes
    themselves) and ``params`` for ``problem_type``, all before the model is touched. ``read_pdf(gs_uri)``
    reads the PDF of a ``document`` payload (at most MAX_PDF_BYTES); without it such payloads are refused."""
    from automill.problems.base import is_image_problem
    from automill.problems.registry import get_problem
    from automill.problems.texts import MAX_PREDICT_CHARS

    params = check_params(params, problem_type)
    problem = get_problem(problem_type)
    if is_image_problem(problem):
        data = _image_bytes(payload)
        problem.check_input(data, "payload.image.image_bytes")
        return Prepared(data, params)
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
    extra = {"preprocessedInput": {"document": {**document, "inputConfig": payload_input}}} if document else {}
    return Prepared(content, params, extra)


def run_batch(problem: Any, loaded: Any, inputs: Sequence[Any], params: dict[str, str]) -> list[dict[str, Any]]:
    """PredictResponses (v1 JSON, before ``Prepared.answer``) for checked inputs that share ``params``:
    one call of the model for types whose response is their predict's payload (classification of
    texts and images), one ``predict_one`` per input for the others (their responses carry more)."""
    from automill.problems.classification import Classification

    if getattr(type(problem), "predict_one", None) is Classification.predict_one:
        return [{"payload": p} for p in problem.predict(loaded, list(inputs), params)]
    return [problem.predict_one(loaded, x, params) for x in inputs]


def predict_payload(
    problem_type: str,
    payload: dict[str, Any],
    params: dict[str, str],
    load: Callable[[], Any],
    read_pdf: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """``prepare`` the request, then predict with the model ``load()`` returns (called only once the
    request is known to be good), unbatched."""
    from automill.problems.registry import get_problem

    prepared = prepare(problem_type, payload, params, read_pdf)
    return prepared.answer(get_problem(problem_type).predict_one(load(), prepared.data, prepared.params))


def _image_bytes(payload: dict[str, Any]) -> bytes:
    from automill.problems.images import MAX_IMAGE_BYTES

    raw = (payload.get("image") or {}).get("imageBytes")
    if not raw:
        raise InvalidArgument(
            "payload.image.image_bytes is required for an image model", field="payload.image.image_bytes"
        )
    if len(raw) > (MAX_IMAGE_BYTES if isinstance(raw, bytes) else MAX_IMAGE_BYTES * 4 // 3 + 4):
        raise InvalidArgument(
            f"payload.image.image_bytes is over the limit of {MAX_IMAGE_BYTES} bytes (30 MB)",
            field="payload.image.image_bytes",
        )
    if isinstance(raw, bytes):  # from a protobuf (gRPC): the bytes themselves, no base64 round trip
        return raw
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
