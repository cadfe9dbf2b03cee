"""Uploads from a browser: ``POST /upload/v1/projects/P/locations/L/buckets/B/objects?prefix=FOLDER``.

The web console's "upload files" (CSV, JSONL, images, PDFs) for an import: a ``multipart/form-data``
body with any number of file parts, each written to ``gs://B/FOLDER/<its file name>``. Google's API
has no such call (GCS has its own upload API); this is an Automill extension, modelled on GCS's
``/upload/storage/v1/b/BUCKET/o``. The answer lists what was written:
``{"objects": [{"uri": "gs://B/FOLDER/a.csv", "bucket": "B", "name": "FOLDER/a.csv", "size": "123"}]}``.

The same door as the API: the caller's key (or the console's session), the permission
``automill.objects.create`` (roles editor and admin) on project P, a bucket open to P (bucket grants)
and not read-only (``gs://automill-samples``), the audit log. Besides the guard's checks (Host, Origin,
the console's CSRF token) the request must carry a header a cross-site form cannot send
(``x-goog-api-key``, ``Authorization`` or ``X-Requested-With``).

Limits (settings): each file at most ``max_upload_file_bytes``, all of them ``max_upload_bytes``
(413 as soon as the body passes one), at most :data:`MAX_FILES` files. Names never leave the folder:
a file name or prefix with a ``..`` or empty segment, an absolute path (``/x``, ``C:\\x``, a backslash),
a control character, a wildcard character (``*?[]``, which an import's URI would read as a pattern) or
more than 255 bytes in a segment is refused with 400, and so is a request naming one object twice.
Nothing is written until the whole body has been read and checked.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from automill.api.errors import error_response, handler_error
from automill.api.guard import PayloadTooLarge
from automill.api.limits import RateLimiter
from automill.core.errors import InvalidArgument, PermissionDenied
from automill.services import audit
from automill.services.access import acting_key, authorize
from automill.services.container import Services
from automill.store.blobs import GS, MAX_NAME_BYTES, acting_project, check_bucket_name

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

PREFIX = "/upload/"
PATH = "/upload/v1/projects/{project}/locations/{location}/buckets/{bucket}/objects"
RPC = "UploadObjects"
PERMISSION = "automill.objects.create"
MAX_FILES = 1000
#: GCS's limit on an object name, in bytes.
MAX_OBJECT_NAME_BYTES = 1024
#: Form fields that are no file (ignored), at most this many and this long.
MAX_FIELDS, MAX_FIELD_BYTES = 20, 8 * 1024
#: Headers of which one must be present: a cross-site HTML form can send none of them, and a
#: cross-site script cannot send them without a CORS preflight, which this server never grants.
FORGERY_PROOF_HEADERS = ("x-goog-api-key", "authorization", "x-requested-with")
SPOOL_BYTES = 1024 * 1024
_SEGMENT_BAD = re.compile(r"[*?\[\]]")
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def body_limit(max_upload_bytes: int) -> int:
    """The largest body the guard lets through to the upload route: the files plus their multipart
    framing (the route itself counts the files' bytes exactly)."""
    return max_upload_bytes + MAX_FILES * 1024 + MAX_FIELDS * MAX_FIELD_BYTES


def clean_path(raw: str, what: str, *, allow_empty: bool = False) -> str:
    """A file name or folder as sent -> the object path it names inside the bucket, or InvalidArgument.

    ``a/b.csv`` keeps its folders (a folder upload); a trailing ``/`` of a prefix is dropped."""
    text = raw.rstrip("/") if allow_empty else raw
    if not text:
        if allow_empty:
            return ""
        raise InvalidArgument(f"{what}: a file needs a name", field="files")
    field_name = "prefix" if allow_empty else "files"
    shown = "".join(c if c.isprintable() else "?" for c in text)[:100]
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI:
            raise InvalidArgument(f"{what} {shown!r} has a control character", field=field_name)
    if text.startswith("/") or "\\" in text or re.match(r"^[A-Za-z]:", text):
        raise InvalidArgument(
            f"{what} {shown!r} is an absolute path: send a name relative to the folder", field=field_name
        )
    parts = text.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidArgument(
                f"{what} {shown!r} has an empty, '.' or '..' segment: names stay inside their folder",
                field=field_name,
            )
        if _SEGMENT_BAD.search(part):
            raise InvalidArgument(
                f"{what} {shown!r} has a wildcard character (* ? [ ]), which an import would read as a pattern",
                field=field_name,
            )
        if len(part.encode()) > MAX_NAME_BYTES:
            raise InvalidArgument(
                f"{what} {shown!r}: each folder or file name has at most {MAX_NAME_BYTES} bytes", field=field_name
            )
    return "/".join(parts)


@dataclass
class _File:
    name: str
    spool: Any  # SpooledTemporaryFile[bytes]
    size: int = 0


@dataclass
class UploadParser:
    """The multipart body -> spooled files, counting bytes against the limits as they arrive."""

    prefix: str
    max_file_bytes: int
    max_total_bytes: int
    files: list[_File] = field(default_factory=list)
    total: int = 0
    _headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _name: bytes = b""
    _value: bytes = b""
    _current: _File | None = None
    _field_bytes: int = 0
    _fields: int = 0
    _seen: set[str] = field(default_factory=set)

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def close(self) -> None:
        for f in self.files:
            f.spool.close()

    def _part_begin(self) -> None:
        self._headers, self._current, self._field_bytes = [], None, 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        if len(self._value) > 16 * 1024:
            raise InvalidArgument("a multipart header is over 16 KiB", field="files")

    def _header_end(self) -> None:
        self._headers.append((self._name.lower(), self._value))
        self._name, self._value = b"", b""

    def _headers_finished(self) -> None:
        disposition = next((v for k, v in self._headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"filename" not in options:
            self._fields += 1
            if self._fields > MAX_FIELDS:
                raise InvalidArgument(f"more than {MAX_FIELDS} form fields", field="files")
            return
        raw = options[b"filename"]
        try:
            # Browsers send the UTF-8 bytes of the name; the parser hands them over as latin-1 text or bytes.
            sent = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw).encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            raise InvalidArgument("a file name is not UTF-8", field="files") from None
        name = clean_path(sent, "file name")
        key = f"{self.prefix}/{name}" if self.prefix else name
        if len(key.encode()) > MAX_OBJECT_NAME_BYTES:
            raise InvalidArgument(
                f"object name {key[:100]!r}... is over {MAX_OBJECT_NAME_BYTES} bytes (folder + file name)",
                field="files",
            )
        if key in self._seen:
            raise InvalidArgument(f"file {name[:100]!r} is sent twice", field="files")
        if len(self.files) >= MAX_FILES:
            raise InvalidArgument(f"more than {MAX_FILES} files in one upload: send them in parts", field="files")
        self._seen.add(key)
        self._current = _File(key, SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 (closed by close())
        self.files.append(self._current)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        f = self._current
        if f is None:
            self._field_bytes += n
            if self._field_bytes > MAX_FIELD_BYTES:
                raise InvalidArgument(f"a form field is over {MAX_FIELD_BYTES} bytes", field="files")
            return
        f.size += n
        self.total += n
        if f.size > self.max_file_bytes:
            raise PayloadTooLarge(
                f"file {f.name.rsplit('/', 1)[-1][:100]!r} is over the limit of {self.max_file_bytes} bytes "
                "a file (--max-upload-file-bytes)",
                field="files",
            )
        if self.total > self.max_total_bytes:
            raise PayloadTooLarge(
                f"the files are over the limit of {self.max_total_bytes} bytes an upload (--max-upload-bytes): "
                "upload them in parts",
                field="files",
            )
        f.spool.write(data[start:end])

    def _part_end(self) -> None:
        self._current = None


def boundary_of(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidArgument(
            "send the files as multipart/form-data (a FormData of the files, or curl -F file=@a.csv)",
            field="Content-Type",
        )
    return bytes(params[b"boundary"])


def resource_of(project: str, location: str, bucket: str) -> str:
    return f"projects/{project}/locations/{location}/buckets/{bucket}"


def describe(path: str) -> tuple[str, str]:
    """(RPC, resource) of an upload path, for the audit log of a refusal by the guard."""
    m = re.match(r"^/upload/v1/(projects/[^/]+/locations/[^/]+/buckets/[^/]+)/objects$", path)
    return RPC, (m.group(1) if m else path[:1000])


def endpoint(
    services: Services, credential: Callable[[Any], str | None], limiter: RateLimiter | None = None
) -> Callable[[Request], Any]:
    """The route's handler; ``credential`` reads a request's key (api.app's, so a session cookie counts)."""
    blobs, settings = services.blobs, services.settings

    async def upload(request: Request) -> Response:
        p = request.path_params
        project, location, bucket = p["project"], p["location"], p["bucket"]
        resource = resource_of(project, location, bucket)
        sent = credential(request.headers)
        key_name = "anonymous" if sent is None else "(invalid key)"
        status, parser = "OK", None
        try:
            principal = await run_in_threadpool(services.auth.authenticate, sent)
            key_name = principal.name
            if limiter is not None and not principal.anonymous:
                limiter.take(principal.name)
            authorize(principal, PERMISSION, project, resource)
            if not any(h in request.headers for h in FORGERY_PROOF_HEADERS):
                raise PermissionDenied(
                    "an upload must send an X-Requested-With header (or its API key): a cross-site form cannot"
                )
            acting_key.set(principal.name)
            acting_project.set(project)
            check_bucket_name(bucket, f"{GS}{bucket}", field="bucket")
            prefix = clean_path(request.query_params.get("prefix", ""), "prefix", allow_empty=True)
            folder = f"{GS}{bucket}/{prefix}/" if prefix else f"{GS}{bucket}/"
            blobs.check_writable(folder)
            blobs.check_access(folder)
            parser = UploadParser(prefix, settings.max_upload_file_bytes, settings.max_upload_bytes)
            multipart = MultipartParser(boundary_of(request.headers.get("content-type", "")), parser.callbacks())
            async for chunk in request.stream():
                multipart.write(chunk)
            multipart.finalize()
            if not parser.files:
                raise InvalidArgument("the upload has no files (multipart parts with a filename)", field="files")
            written = await run_in_threadpool(_write_all, services, bucket, parser.files)
            response: Response = JSONResponse({"objects": written})
        except ClientDisconnect:
            status, response = "CANCELLED", Response(status_code=400)
        except Exception as raised:
            exc = handler_error(_multipart_error(raised), f"POST {request.url.path[:200]}")
            status, response = exc.status, error_response(exc)
        finally:
            if parser is not None:
                parser.close()
        await run_in_threadpool(
            audit.record,
            services.db,
            key_name=key_name,
            project=project,
            method=RPC,
            http_method="POST",
            resource=resource,
            http_status=response.status_code,
            status=status,
            client=request.client.host if request.client else "",
        )
        return response

    return upload


def _multipart_error(exc: Exception) -> Exception:
    """python-multipart's parse errors are the caller's malformed body: INVALID_ARGUMENT, not INTERNAL."""
    if type(exc).__module__.startswith("python_multipart"):
        return InvalidArgument(f"the multipart body is malformed: {str(exc)[:200]}", field="files")
    return exc


def _write_all(services: Services, bucket: str, files: list[_File]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        uri = f"{GS}{bucket}/{f.name}"
        f.spool.seek(0)
        with services.blobs.open_write(uri) as fh:
            shutil.copyfileobj(f.spool, fh, 1024 * 1024)
        out.append({"uri": uri, "bucket": bucket, "name": f.name, "size": str(f.size)})
    return out
