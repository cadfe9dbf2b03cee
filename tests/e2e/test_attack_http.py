"""The HTTP door under attack (issue 24's probes): cross-site requests, DNS rebinding, oversized and
stalled bodies, slowloris heads, :wait floods, hostile numbers and nesting, and errors outside the
API routes. One real server (SQLite: none of this touches the database engine) with short read
deadlines and a 1 MB body limit, so each probe is quick."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Server

PARENT = "projects/attack/locations/us-central1"
JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024
HEAD_TIMEOUT = 2.0
MAX_WAITS = 8


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("attack-http") / "data"
    data.mkdir()
    server = Server(
        data_dir=data,
        database_url="",
        workers=0,
        env={
            "AUTOMILL_MAX_REQUEST_BYTES": str(LIMIT),
            "AUTOMILL_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
            "AUTOMILL_BODY_IDLE_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
            "AUTOMILL_MAX_CONCURRENT_WAITS": str(MAX_WAITS),
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def url(srv: Server, path: str) -> str:
    return f"{srv.endpoint}/v1/{path}"


def dataset_count(srv: Server) -> int:
    return len(requests.get(url(srv, f"{PARENT}/datasets"), timeout=10).json().get("datasets", []))


def assert_status(resp: requests.Response, http: int, status: str) -> dict:
    assert resp.status_code == http, (resp.status_code, resp.text[:300])
    body = resp.json()["error"]
    assert body["status"] == status and body["code"] == http, body
    return body


DATASET = {"displayName": "d", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}


def test_cross_site_requests_change_nothing(srv: Server) -> None:
    before = dataset_count(srv)
    body = json.dumps(DATASET)
    # a cross-site form or no-cors fetch can only send these content types
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {}
        resp = requests.post(url(srv, f"{PARENT}/datasets"), data=body, headers=headers, timeout=10)
        assert_status(resp, 415, "INVALID_ARGUMENT")
    # a page of another origin, even with the right content type
    resp = requests.post(
        url(srv, f"{PARENT}/datasets"), data=body, headers={**JSON, "Origin": "http://evil.example"}, timeout=10
    )
    assert_status(resp, 403, "PERMISSION_DENIED")
    assert dataset_count(srv) == before
    # DNS rebinding: a foreign Host name is refused, reads included
    resp = requests.get(url(srv, f"{PARENT}/datasets"), headers={"Host": "rebind.evil.example"}, timeout=10)
    assert_status(resp, 400, "INVALID_ARGUMENT")
    # the server's own origin and plain clients (no Origin) still work
    own = {**JSON, "Origin": f"http://127.0.0.1:{srv.port}"}
    assert requests.post(url(srv, f"{PARENT}/datasets"), data=body, headers=own, timeout=10).status_code == 200
    assert (
        requests.get(url(srv, f"{PARENT}/datasets"), headers={"Host": f"localhost:{srv.port}"}, timeout=10).status_code
        == 200
    )
    assert dataset_count(srv) == before + 1


def test_errors_outside_the_api_are_status_json(srv: Server) -> None:
    # "/" is the web console's (issue 23): a redirect to its datasets page; other unknown paths are Status JSON
    root = requests.get(f"{srv.endpoint}/", timeout=10, allow_redirects=False)
    assert root.status_code in (302, 303, 307) and "ui/projects/" in root.headers["location"], root.status_code
    assert_status(requests.get(f"{srv.endpoint}/no-such-page", timeout=10), 404, "NOT_FOUND")
    assert_status(requests.get(f"{srv.endpoint}/favicon.ico", timeout=10), 404, "NOT_FOUND")
    assert_status(requests.post(f"{srv.endpoint}/healthz", timeout=10), 405, "UNIMPLEMENTED")
    resp = requests.head(url(srv, f"{PARENT}/datasets"), timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    # a request h11 cannot parse
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        raw = recv_all(sock)
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and json.loads(payload)["error"]["status"] == "INVALID_ARGUMENT"


def test_oversized_bodies_are_refused_before_reading(srv: Server) -> None:
    before = dataset_count(srv)
    # declared length over the limit: answered before a byte of the body is sent
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/{PARENT}/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * LIMIT}\r\n\r\n".encode()
        )
        raw = recv_all(sock)
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["error"]["status"] == "INVALID_ARGUMENT"

    # chunked (no declared length): refused once the bytes read pass the limit
    def chunks() -> Iterator[bytes]:
        yield b'{"displayName": "d", "description": "'
        for _ in range(2 * LIMIT // 65536):
            yield b"x" * 65536
        yield b'", "textClassificationDatasetMetadata": {}}'

    resp = requests.post(url(srv, f"{PARENT}/datasets"), data=chunks(), headers=JSON, timeout=30)
    assert_status(resp, 413, "INVALID_ARGUMENT")
    assert dataset_count(srv) == before


def recv_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return out
        if not data:
            return out
        out += data


def held_for(srv: Server, first: bytes, trickle: bytes = b"", limit: float = 15.0) -> float:
    """Seconds until the server closes a connection that sent ``first`` (then ``trickle`` each 0.5 s)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=0.5) as sock:
        sock.sendall(first)
        while time.monotonic() - start < limit:
            try:
                if not sock.recv(4096):
                    break
            except TimeoutError:
                if trickle:
                    try:
                        sock.sendall(trickle)
                    except OSError:
                        break
            except OSError:
                break
    return time.monotonic() - start


def test_stalled_requests_are_closed(srv: Server) -> None:
    bound = HEAD_TIMEOUT + 2.0
    assert held_for(srv, b"") < bound  # connects, sends nothing
    assert held_for(srv, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") < bound  # stops mid-headers
    assert held_for(srv, b"GET /healthz HTTP/1.1\r\n", trickle=b"X-Slow: 1\r\n") < bound  # a header each 0.5 s
    stalled_body = (
        f"POST /v1/{PARENT}/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    ).encode()
    assert held_for(srv, stalled_body) < bound
    assert requests.get(f"{srv.endpoint}/healthz", timeout=5).status_code == 200


def test_waits_hold_no_thread_and_are_capped(srv: Server) -> None:
    """With no workers an import never finishes: :wait calls on it are held for their whole timeout."""
    dataset = requests.post(url(srv, f"{PARENT}/datasets"), json=DATASET, timeout=10).json()["response"]["name"]
    op = requests.post(
        url(srv, f"{dataset}:importData"),
        timeout=10,
        json={"inputConfig": {"gcsSource": {"inputUris": ["gs://attack/none.csv"]}}},
    ).json()["name"]
    codes: list[int] = []
    retry_after: list[str] = []

    def wait() -> None:
        resp = requests.post(url(srv, f"{op}:wait"), json={"timeout": "4s"}, timeout=30)
        codes.append(resp.status_code)
        if resp.status_code == 429:
            retry_after.append(resp.headers.get("Retry-After", ""))

    threads = [threading.Thread(target=wait) for _ in range(60)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    start = time.monotonic()
    assert requests.get(f"{srv.endpoint}/healthz", timeout=10).status_code == 200
    assert requests.get(url(srv, f"{PARENT}/datasets"), timeout=10).status_code == 200
    assert time.monotonic() - start < 1.0, "the server stalled while :wait calls were held"
    for t in threads:
        t.join()
    assert codes.count(200) == MAX_WAITS and codes.count(429) == 60 - MAX_WAITS, codes
    assert set(retry_after) == {"1"}
    requests.post(url(srv, f"{op}:cancel"), timeout=10)


HOSTILE = [
    # (what, path, raw body, field the error must name or None)
    (
        "5,000-digit number",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", "textClassificationModelMetadata": '
        '{"trainBudgetMilliNodeHours": ' + "9" * 5000 + "}}",
        "trainBudgetMilliNodeHours",
    ),
    (
        "5,000-digit number elsewhere",
        f"{PARENT}/datasets",
        '{"displayName": "d", "description": ' + "9" * 5000 + ', "textClassificationDatasetMetadata": {}}',
        None,
    ),
    ("JSON nested 100,000 deep", f"{PARENT}/datasets", "[" * 100_000 + "]" * 100_000, None),
    ("objects nested 100,000 deep", f"{PARENT}/datasets", '{"a":' * 100_000 + "1" + "}" * 100_000, None),
    (
        "budget 1e999",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", '
        '"textClassificationModelMetadata": {"trainBudgetMilliNodeHours": 1e999}}',
        "trainBudgetMilliNodeHours",
    ),
    (
        "image budget 1e999",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", '
        '"imageClassificationModelMetadata": {"trainBudgetMilliNodeHours": 1e999}}',
        "trainBudgetMilliNodeHours",
    ),
    (
        "trainBudget inf",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", "imageClassificationModelMetadata": {"trainBudget": "inf"}}',
        "trainBudget",
    ),
    (
        "NaN literal",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", "imageClassificationModelMetadata": {"trainBudget": NaN}}',
        None,
    ),
    (
        "metadata a string",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", "textClassificationModelMetadata": "abc"}',
        "textClassificationModelMetadata",
    ),
    (
        "dataset metadata a string",
        f"{PARENT}/datasets",
        '{"displayName": "d", "textClassificationDatasetMetadata": "abc"}',
        "textClassificationDatasetMetadata",
    ),
    (
        "base model id an object",
        f"{PARENT}/models",
        '{"displayName": "m", "datasetId": "x", "baseModelId": {"a": 1}, "textClassificationModelMetadata": {}}',
        "baseModelId",
    ),
    ("wait timeout 1e999", f"{PARENT}/operations/x:wait", '{"timeout": "1e999s"}', "timeout"),
]


@pytest.mark.parametrize("what,path,raw,field", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_invalid_argument(srv: Server, what: str, path: str, raw: str, field: str | None) -> None:
    resp = requests.post(url(srv, path), data=raw, headers=JSON, timeout=30)
    body = assert_status(resp, 400, "INVALID_ARGUMENT")
    assert "Error" not in body["message"], body  # no Python exception names
    if field:
        named = [v["field"] for d in body.get("details", []) for v in d.get("fieldViolations", [])]
        assert any(field in n for n in named), (what, body)


def test_hostile_page_token(srv: Server) -> None:
    for payload in ("[" * 5000 + "]" * 5000, '{"a": ' + "9" * 5000 + ', "s": "x"}', "{" * 3000):
        token = base64.urlsafe_b64encode(payload.encode()).decode()
        for path in (f"{PARENT}/datasets", f"{PARENT}/models", f"{PARENT}/operations"):
            resp = requests.get(url(srv, path), params={"pageToken": token}, timeout=10)
            body = assert_status(resp, 400, "INVALID_ARGUMENT")
            assert body["details"][0]["fieldViolations"][0]["field"] == "page_token"


def test_server_log_has_no_internal_errors(srv: Server) -> None:
    log = srv.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
