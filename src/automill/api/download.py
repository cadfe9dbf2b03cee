"""Reads of a bucket folder from a browser: ``GET /download/v1/projects/P/locations/L/buckets/B/objects?prefix=FOLDER``.

Two answers (an Automill extension, outside Google's API; GCS has its own list and download calls):

- without ``alt``: the folder's files, ``{"folder": "gs://B/FOLDER/", "objects": [{"uri", "name", "size"}],
  "totalBytes"}`` (a batch prediction's result files in the console); permission ``automill.objects.list``;
- ``alt=zip``: every file under the folder as one zip archive, streamed (the console's "Download zip" of an
  export's ``gcsOutputDirectory``); entries are named relative to the folder; permission
  ``automill.objects.get``.

Both permissions belong to the roles viewer, editor and admin (not predictor) on project P. The same door as
the API: the caller's key (or the console's session cookie), the rate limit, a bucket open to P (bucket
grants). ``prefix`` follows the upload's rules (no ``..``, ``.`` or empty segment, no absolute path, control
or wildcard character), so a read never leaves its bucket; links and special files inside a local bucket are
skipped. A folder with no file answers 404; one holding more than ``services.folders.MAX_FILES`` files or
more than ``max_download_bytes`` bytes answers 400 FAILED_PRECONDITION before a byte is sent. Reads are
not audited (as no read of the API is); refusals (401, 403) are, as everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from automill.api.errors import error_response, handler_error
from automill.api.limits import RateLimiter
from automill.api.upload import clean_path, resource_of
from automill.core.errors import InvalidArgument
from automill.services import audit, folders
from automill.services.access import acting_key, authorize
from automill.services.container import Services
from automill.store.blobs import GS, acting_project, check_bucket_name

PATH = "/download/v1/projects/{project}/locations/{location}/buckets/{bucket}/objects"
LIST_PERMISSION = "automill.objects.list"
GET_PERMISSION = "automill.objects.get"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact one as RFC 5987 ``filename*``."""
    ascii_name = _UNSAFE_FILENAME.sub("_", file_name)[:200] or "download.zip"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name[:200], safe='')}"


def endpoint(
    services: Services, credential: Callable[[Any], str | None], limiter: RateLimiter | None = None
) -> Callable[[Request], Any]:
    """The route's handler; ``credential`` reads a request's key (api.app's, so a session cookie counts)."""
    blobs, settings = services.blobs, services.settings

    async def download(request: Request) -> Response:
        p = request.path_params
        project, location, bucket = p["project"], p["location"], p["bucket"]
        resource = resource_of(project, location, bucket)
        sent = credential(request.headers)
        key_name = "anonymous" if sent is None else "(invalid key)"
        alt = request.query_params.get("alt", "json")
        rpc = "DownloadObjects" if alt == "zip" else "ListObjects"
        try:
            principal = await run_in_threadpool(services.auth.authenticate, sent)
            key_name = principal.name
            if limiter is not None and not principal.anonymous:
                limiter.take(principal.name)
            if alt not in ("json", "zip"):
                raise InvalidArgument(f"alt must be json (a listing) or zip, got {alt[:20]!r}", field="alt")
            authorize(principal, GET_PERMISSION if alt == "zip" else LIST_PERMISSION, project, resource)
            acting_key.set(principal.name)
            acting_project.set(project)
            check_bucket_name(bucket, f"{GS}{bucket}", field="bucket")
            prefix = clean_path(request.query_params.get("prefix", ""), "prefix", allow_empty=True)
            uri = folders.folder_uri(bucket, prefix)
            blobs.check_access(uri)
            cap = settings.max_download_bytes if alt == "zip" else None
            folder = await run_in_threadpool(folders.list_folder, blobs, uri, max_bytes=cap)
            if alt == "json":
                return JSONResponse(folder.as_json(), headers={"Cache-Control": "no-store"})
            headers = {
                "Content-Disposition": content_disposition(folders.zip_file_name(uri)),
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
            # A sync iterator: Starlette reads it in the thread pool, with this request's context (the
            # acting project the bucket grants check).
            return StreamingResponse(folders.zip_chunks(blobs, folder), media_type="application/zip", headers=headers)
        except Exception as raised:
            exc = handler_error(raised, f"GET {request.url.path[:200]}")
            response = error_response(exc)
            if response.status_code in (401, 403):
                await run_in_threadpool(
                    audit.record,
                    services.db,
                    key_name=getattr(exc, "key_name", key_name),
                    project=project,
                    method=rpc,
                    http_method="GET",
                    resource=resource,
                    http_status=response.status_code,
                    status=exc.status,
                    client=request.client.host if request.client else "",
                )
            return response

    return download
