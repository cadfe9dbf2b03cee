"""The console's routes: ``/`` (a redirect), the page shell for every ``/ui/...`` URL, its static
files, and the sign-in session (``/ui/session``).

Every page URL (``/ui/projects/P/locations/L/datasets/ID?tab=items``) answers the same shell; the
script in it reads the URL and draws the page from API calls. The shell's ``<base href>`` is
relative (``../../``, one step per folder of the URL), so the console works unchanged behind a
proxy that serves it under a path prefix.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from automill.api import session
from automill.api.errors import error_response
from automill.core.errors import AutomillError, InvalidArgument, Unauthenticated
from automill.problems.registry import MODEL_KEYS
from automill.services.access import Principal
from automill.services.models import budget_limits

STATIC = Path(__file__).resolve().parent / "static"
#: The most bytes a sign-in body may have (a key is under 80 characters).
MAX_SIGNIN_BYTES = 4096


def base_href(path: str) -> str:
    """The relative URL of the server's root from a page at ``path`` (``/ui/a/b`` -> ``../../``)."""
    depth = path.lstrip("/").count("/")
    return "../" * depth if depth else "./"


@lru_cache(maxsize=1)
def _template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def shell(base: str, info: dict[str, Any] | None = None) -> str:
    """The page shell; ``info`` (what ``GET /ui/session`` answers) is put into it as a JSON data block,
    which saves the page that request before it draws. Never executed: the CSP allows no inline script."""
    data = ""
    if info is not None:
        text = json.dumps(info, separators=(",", ":"))
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        data = f'<script type="application/json" id="session-info">{text}</script>'
    return _template().replace("{{base}}", base).replace("{{session}}", data)


def principal_json(p: Principal) -> dict[str, Any]:
    return {"name": p.name, "role": p.role, "project": p.project, "anonymous": p.anonymous}


def console_routes(services: Any) -> list[BaseRoute]:
    """The console's routes for an app built on ``services`` (a services.container.Services)."""
    settings = services.settings
    auth = services.auth

    def home(project: str = "") -> str:
        return f"ui/projects/{project or settings.console_project}/locations/{settings.console_location}/datasets"

    async def root(_: Request) -> Response:
        return RedirectResponse(home(), status_code=302)

    async def page(request: Request) -> Response:
        headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        path, root = request.scope["path"], request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        info = await run_in_threadpool(describe, session.cookie_value(request.headers))
        return HTMLResponse(shell(base_href(path), info), headers=headers)

    def describe(credential: str | None) -> dict[str, Any]:
        keyed = auth.keyed()
        out: dict[str, Any] = {
            "keyed": keyed,
            "defaultProject": settings.console_project,
            "defaultLocation": settings.console_location,
            # The training panel's help: per model metadata key, the budgets CreateModel enforces (the
            # same function decides them), so the panel and the API cannot disagree.
            "budgets": {key: budget_limits(settings, problem) for key, problem in MODEL_KEYS.items()},
        }
        try:
            principal = auth.authenticate(credential)
        except Unauthenticated as exc:
            return {**out, "signedIn": False, "reason": exc.message if credential else ""}
        out.update(signedIn=True, principal=principal_json(principal))
        if not principal.anonymous:
            out["home"] = home("" if principal.project == "*" else principal.project)
        if credential:
            out["csrfToken"] = session.csrf_token(credential)
        return out

    async def get_session(request: Request) -> Response:
        info = await run_in_threadpool(describe, session.cookie_value(request.headers))
        return JSONResponse(info, headers={"Cache-Control": "no-store"})

    async def sign_in(request: Request) -> Response:
        secure = session.over_tls(request.url.scheme, request.headers)
        try:
            raw = await request.body()
            if len(raw) > MAX_SIGNIN_BYTES:
                raise InvalidArgument("the sign-in request is too large", field="key")
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise InvalidArgument('the sign-in request must be JSON: {"key": "am_..."}', field="key") from None
            key = body.get("key") if isinstance(body, dict) else None
            if not isinstance(key, str) or not key.strip():
                raise InvalidArgument("enter an API key (automill keys create prints one)", field="key")
            key = key.strip()
            if not await run_in_threadpool(auth.keyed):
                raise InvalidArgument("this server has no API keys: no sign-in is needed", field="key")
            principal = await run_in_threadpool(auth.authenticate, key)
        except AutomillError as exc:
            if exc.field is None:
                exc.field = "key"
            return error_response(exc)
        info = {"signedIn": True, "principal": principal_json(principal), "csrfToken": session.csrf_token(key)}
        info["home"] = home("" if principal.project == "*" else principal.project)
        response = JSONResponse(info, headers={"Cache-Control": "no-store"})
        response.headers["Set-Cookie"] = session.set_cookie_header(key, secure=secure)
        return response

    async def sign_out(request: Request) -> Response:
        response = JSONResponse({"signedIn": False})
        response.headers["Set-Cookie"] = session.clear_cookie_header(
            secure=session.over_tls(request.url.scheme, request.headers)
        )
        return response

    return [
        Route("/", root, methods=["GET"]),
        Route("/ui/session", get_session, methods=["GET"]),
        Route("/ui/session", sign_in, methods=["POST"]),
        Route("/ui/session", sign_out, methods=["DELETE"]),
        Mount("/ui/static", app=StaticFiles(directory=STATIC), name="console-static"),
        Route("/ui", page, methods=["GET"]),
        Route("/ui/{path:path}", page, methods=["GET"]),
    ]
