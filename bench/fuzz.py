"""Fuzz a real Automill server from its own /openapi.json with schemathesis, with and without a valid
API key, and count what matters for a server on a network: answers with a 5xx status, error answers
that are not google.rpc.Status JSON, and answers slower than 10 s.

    .venv/bin/python -m bench.fuzz                 # about 12,000 requests, a minute or two
    .venv/bin/python -m bench.fuzz --examples 50   # more random cases per operation

The server runs on SQLite in a temporary folder with one worker; an admin key is created with
`automill keys create` first, so the requests without a key are all refused (401) and those with it
reach every handler. Results: a table on stdout and bench/results/fuzz-<time>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SLOW_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def automill(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "automill", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return proc.stdout


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    with open(data / "server.log", "wb") as log:  # the server keeps writing to its copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "automill", "serve", "--port", str(port), "--data-dir", str(data), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # the key's request rate is what is fuzzed here, not the rate limit (tested apart)
            env={**os.environ, "AUTOMILL_MAX_REQUESTS_PER_MINUTE": "0"},
        )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def run_schemathesis(url: str, examples: int, seed: int, log: Path, headers: list[str]) -> int:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "bench.fuzz_checks",
        "AUTOMILL_FUZZ_LOG": str(log),
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        str(Path(sys.executable).parent / "st"),
        "run",
        url,
        "--checks",
        "not_a_server_error,status_json_on_errors",
        "--max-response-time",
        str(SLOW_SECONDS),
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--no-color",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        str(SLOW_SECONDS * 3),
    ]
    for h in headers:
        cmd += ["--header", h]
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


def summarize(log: Path) -> dict[str, object]:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    statuses = Counter(r["status"] for r in rows)
    return {
        "requests": len(rows),
        "operations": len({r["op"] for r in rows}),
        "status_5xx": sum(n for s, n in statuses.items() if s >= 500),
        # 501 is google.rpc UNIMPLEMENTED: the v1beta1 Tables RPCs Automill does not serve
        "status_5xx_but_501": sum(n for s, n in statuses.items() if s >= 500 and s != 501),
        "slower_than_10s": sum(1 for r in rows if r["seconds"] > SLOW_SECONDS),
        "errors_not_status_json": sum(1 for r in rows if not r["status_json"]),
        "max_seconds": round(max((r["seconds"] for r in rows), default=0.0), 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples",
        type=int,
        default=5,
        help="schemathesis --max-examples per operation and pass (its coverage phase adds many more)",
    )
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="automill-fuzz-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        automill("migrate", "--data-dir", str(data))
        key = (
            automill("keys", "create", "--project", "*", "--role", "admin", "--name", "fuzz", "--data-dir", str(data))
            .strip()
            .splitlines()[-1]
        )
        port = free_port()
        proc = start_server(data, port)
        url = f"http://127.0.0.1:{port}/openapi.json"
        passes = {}
        try:
            for name, headers in (("with a valid key", [f"x-goog-api-key: {key}"]), ("without a key", [])):
                log = Path(tmp) / f"{name.replace(' ', '_')}.ndjson"
                code = run_schemathesis(url, args.examples, args.seed, log, headers)
                passes[name] = {**summarize(log), "schemathesis_exit_code": code}
        finally:
            proc.terminate()
            proc.wait(30)
        server_log = (data / "server.log").read_text(errors="replace")
        secret_in_log = key in server_log
        tracebacks = server_log.count("Traceback")
    total = sum(int(p["requests"]) for p in passes.values())  # type: ignore[call-overload]
    result = {
        "bench": "fuzz",
        "started": started.isoformat(timespec="seconds"),
        "examples": args.examples,
        "seed": args.seed,
        "requests": total,
        "passes": passes,
        "server_tracebacks": tracebacks,
        "key_in_server_log": secret_in_log,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }
    lines = [
        f"# Fuzz run {result['started']} (commit {result['commit']}, seed {args.seed}, --examples {args.examples})",
        "",
        "| pass | requests | operations | 5xx | 5xx but 501 | errors not Status JSON | > 10 s | slowest s | st exit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in passes.items():
        lines.append(
            f"| {name} | {p['requests']} | {p['operations']} | {p['status_5xx']} | {p['status_5xx_but_501']} | "
            f"{p['errors_not_status_json']} | {p['slower_than_10s']} | {p['max_seconds']} | "
            f"{p['schemathesis_exit_code']} |"
        )
    lines += [
        "",
        "A 501 is google.rpc UNIMPLEMENTED, Automill's answer for what it does not serve (AutoML Tables, "
        "translation and video datasets). `st exit` is schemathesis' own exit code: it counts those 501s as "
        "server errors (ST101) and any error of its own.",
        "",
        f"Total requests: {total}. Tracebacks in the server log: {tracebacks}. Key in the server log: {secret_in_log}.",
        "",
        "Statuses: " + "; ".join(f"{n}: {p['statuses']}" for n, p in passes.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"fuzz-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"fuzz-{stamp}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
