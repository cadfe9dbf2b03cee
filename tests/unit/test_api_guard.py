"""Which Host names a server answers to, and how request bodies are read (api.guard, api.codec)."""

from __future__ import annotations

import pytest

from automill.api.codec import parse_body
from automill.api.guard import HostPolicy, host_only
from automill.core.errors import InvalidArgument


def test_host_only() -> None:
    assert host_only("Example.COM:8080") == "example.com"
    assert host_only("[::1]:8080") == "::1"
    assert host_only("127.0.0.1") == "127.0.0.1"


def test_loopback_server_answers_to_loopback_names_only() -> None:
    p = HostPolicy("127.0.0.1")
    assert all(p.allows(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not p.allows("evil.example") and not p.allows("10.0.0.1") and not p.allows("")


def test_named_server_answers_to_its_names() -> None:
    p = HostPolicy("10.1.2.3", ["automill.example.com"])
    assert p.allows("10.1.2.3") and p.allows("automill.example.com")
    assert not p.allows("evil.example") and not p.allows("localhost")


def test_wildcard_bind() -> None:
    assert HostPolicy("0.0.0.0").allows("anything.example")  # noqa: S104 - a wildcard bind is the case tested  # nothing to compare with: the Host protects nothing
    p = HostPolicy("0.0.0.0", ["automill.example.com"])  # noqa: S104 - a wildcard bind is the case tested
    assert p.allows("automill.example.com") and p.allows("localhost") and not p.allows("evil.example")
    assert HostPolicy("127.0.0.1", ["*"]).allows("evil.example")


@pytest.mark.parametrize(
    "raw",
    [
        b"[1]",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 65 + b"1" + b"}" * 65,
        b"\xff\xfe",
        b"{",
    ],
)
def test_bad_bodies(raw: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_body(raw)


def test_bodies() -> None:
    assert parse_body(b"") == {} and parse_body(b"  ") == {}
    assert parse_body(b'{"a": {"b": [1, 2.5, "x"]}}') == {"a": {"b": [1, 2.5, "x"]}}
    assert parse_body(b'{"n": ' + b"9" * 100 + b"}") == {"n": float("inf")}  # every numeric field refuses it
    assert parse_body(b'{"a":' * 63 + b"1" + b"}" * 63)  # 64 levels deep is fine
