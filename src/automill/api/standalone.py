"""``automill serve-model FOLDER``: the predict-only server of an exported model (model_format docker).

No database, no buckets, no workers: the folder's model is loaded once at start, then

- ``GET /healthz`` answers ``{"status": "ok", "model": ID}``;
- ``POST /{v1,v1beta1}/projects/{p}/locations/{l}/models/{ID}:predict`` decodes the PredictRequest
  and encodes the PredictResponse with api.codec and predicts with serving.predict, as the full
  server does (so the answers are the same). Any project and location are accepted; the model
  segment must be this model's id (another answers NOT_FOUND: a client pointed at the wrong
  container hears so instead of getting another model's labels).

Errors are google.rpc.Status JSON; the door's checks (Host, Origin, Content-Type, body size) and
uvicorn's read deadlines are the full server's (api.guard, api.protocol), set by the same AUTOMILL_*
variables.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automill.api import codec
from automill.api.errors import error_response, handler_error, http_error
from automill.api.guard import HostPolicy, RequestGuard
from automill.core.errors import NotFound
from automill.export.docker import MODEL_DIR, read_manifest
from automill.serving.predict import predict_payload

log = logging.getLogger("automill.serve_model")
_PREDICT = re.compile(r"^projects/[^/:]+/locations/[^/:]+/models/(?P<model>[^/:]+):predict$")


class ExportedModel:
    """An exported folder, loaded: its manifest and the problem's loaded model."""

    def __init__(self, folder: Path) -> None:
        from automill.problems.registry import get_problem

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.problem_type: str = self.manifest["problem_type"]
        self.model_id: str = self.manifest["model"]["id"]
        self.loaded = get_problem(self.problem_type).load(self.folder / self.manifest.get("model_dir", MODEL_DIR))

    def predict(self, payload: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return predict_payload(self.problem_type, payload, params, load=lambda: self.loaded)


def create_app(
    model: ExportedModel,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: tuple[str, ...] = (),
    max_body_bytes: int = 40 * 1024 * 1024,
) -> Any:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "model": model.model_id, "problemType": model.problem_type})

    async def api(request: Request) -> Response:
        version, path = request.path_params["version"], request.path_params["path"]
        try:
            if version not in codec.VERSIONS:
                raise NotFound(f"unknown API version {version!r}; use v1 or v1beta1")
            m = _PREDICT.match(path)
            if not m:
                raise NotFound(
                    f"this server answers only POST /{version}/projects/P/locations/L/models/"
                    f"{model.model_id}:predict (and GET /healthz), not {request.url.path[:200]}"
                )
            if m.group("model") != model.model_id:
                raise NotFound(
                    f"model {m.group('model')[:100]} is not served here: this server serves only model {model.model_id}"
                )
            raw = await request.body()
            body = await run_in_threadpool(codec.parse_body, raw) if len(raw) > 65536 else codec.parse_body(raw)
            req = codec.decode(version, "PredictRequest", body)
            out = await run_in_threadpool(model.predict, req.get("payload", {}), req.get("params", {}))
            return JSONResponse(codec.from_v1(version, "PredictResponse", out))
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as raised:
            return error_response(handler_error(raised, f"{request.method} {request.url.path}"))

    app = Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), Route("/{version}/{path:path}", api, methods=["POST"])],
        exception_handlers={HTTPException: http_error},
    )
    return RequestGuard(app, policy=HostPolicy(host, allowed_hosts), max_body_bytes=max_body_bytes)


def serve(folder: Path, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Load ``folder`` and serve it with uvicorn until stopped."""
    import uvicorn

    from automill.api.protocol import GuardedH11Protocol
    from automill.settings import Settings

    settings = Settings.from_env()
    try:
        model = ExportedModel(folder)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    log.info(
        "serving model %s (%s, %s) on http://%s:%d",
        model.model_id,
        model.manifest["model"]["display_name"],
        model.problem_type,
        host,
        port,
    )
    uvicorn.run(
        create_app(model, host=host, allowed_hosts=settings.allowed_hosts, max_body_bytes=settings.max_request_bytes),
        host=host,
        port=port,
        log_level="warning",
        http=GuardedH11Protocol.configure(
            head_timeout=settings.head_timeout_seconds,
            body_idle_timeout=settings.body_idle_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        ),
        limit_concurrency=settings.max_connections,
    )
