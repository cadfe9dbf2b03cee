"""The REST client the commands use: JSON in and out, google.rpc errors turned into CliError."""

from __future__ import annotations

import json
from typing import Any

import requests

from automill.cli.errors import HTTP_STATUS, CliError

VERSION = "v1"


class Api:
    def __init__(self, endpoint: str, api_key: str = "") -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """``path`` is a resource name (``projects/...``) with an optional ``:verb``."""
        url = f"{self.endpoint}/{VERSION}/{path.lstrip('/')}"
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["x-goog-api-key"] = self.api_key
        data: bytes | None = None
        if body is None and method in ("POST", "PATCH", "PUT"):
            body = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            resp = self.session.request(method, url, data=data, params=query or None, headers=headers, timeout=timeout)
        except requests.exceptions.ConnectionError as exc:
            raise CliError(
                "UNAVAILABLE",
                f"cannot reach the Automill server at {self.endpoint} ({_reason(exc)}); "
                "start it with `automill serve`, or point the CLI elsewhere with "
                "`automill config set endpoint URL` or --endpoint",
            ) from None
        except requests.exceptions.Timeout:
            raise CliError(
                "DEADLINE_EXCEEDED",
                f"the server at {self.endpoint} did not answer {method} {path} within {timeout:g} s",
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise CliError("INVALID_ARGUMENT", f"bad endpoint {self.endpoint!r}: {exc}") from None
        except requests.RequestException as exc:
            raise CliError("UNAVAILABLE", f"request to {self.endpoint} failed: {exc}") from None
        try:
            payload = resp.json() if resp.content else {}
        except ValueError:
            payload = None
        if resp.status_code >= 400:
            err = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(err, dict) and (err.get("status") or err.get("message")):
                status = str(err.get("status") or HTTP_STATUS.get(resp.status_code, "UNKNOWN"))
                raise CliError(status, str(err.get("message", "")))
            snippet = " ".join(resp.text.split())[:200]
            raise CliError(
                HTTP_STATUS.get(resp.status_code, "UNKNOWN"),
                f"HTTP {resp.status_code} from {url}" + (f": {snippet}" if snippet else ""),
            )
        if not isinstance(payload, dict):
            raise CliError(
                "UNKNOWN",
                f"the server at {self.endpoint} answered {method} {path} with something "
                "that is not a JSON object (is the endpoint an Automill server?)",
            )
        return payload

    def list_all(self, path: str, key: str, params: dict[str, Any] | None = None, limit: int = 0) -> dict[str, Any]:
        """Follow nextPageToken; -> the API's list shape with every item (``nextPageToken`` kept when
        ``limit`` stopped the listing early)."""
        query = dict(params or {})
        items: list[Any] = []
        while True:
            page = self.call("GET", path, params=query)
            items.extend(page.get(key, []))
            token = page.get("nextPageToken", "")
            if limit and len(items) >= limit:
                out: dict[str, Any] = {key: items[:limit]}
                if token and len(items) == limit:  # the token resumes exactly after the last item shown
                    out["nextPageToken"] = token
                return out
            if not token:
                return {key: items} if items else {}
            query["pageToken"] = token


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "Temporary failure in name resolution",
        "Connection reset",
    ):
        if marker in text:
            return marker.lower()
    return "connection failed"
