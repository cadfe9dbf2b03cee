"""Schemathesis checks for bench.fuzz (loaded through SCHEMATHESIS_HOOKS): every error answer is a
google.rpc.Status JSON body, and every response is logged for the counts in the result file."""

from __future__ import annotations

import json
import os

import schemathesis

LOG = os.environ.get("AUTOMILL_FUZZ_LOG", "")


def _is_status_json(content: bytes) -> bool:
    try:
        err = json.loads(content)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return (
        isinstance(err, dict)
        and isinstance(err.get("code"), int)
        and isinstance(err.get("message"), str)
        and isinstance(err.get("status"), str)
    )


@schemathesis.check
def status_json_on_errors(ctx, response, case):  # type: ignore[no-untyped-def]
    """An answer of 400 or more is {"error": {"code": int, "message": str, "status": str}}."""
    ok = response.status_code < 400 or _is_status_json(response.content)
    if LOG:
        with open(LOG, "a") as fh:
            fh.write(
                json.dumps(
                    {
                        "op": case.operation.label,
                        "status": response.status_code,
                        "seconds": response.elapsed,
                        "status_json": ok,
                    }
                )
                + "\n"
            )
    if not ok:
        raise AssertionError(f"{response.status_code} answer is not google.rpc.Status JSON: {response.content[:200]!r}")
