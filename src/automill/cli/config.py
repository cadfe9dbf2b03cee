"""The CLI's settings: a config file (gcloud's habit), then AUTOMILL_* variables, then flags.

The file is ``~/.config/automill/config.ini`` (``$XDG_CONFIG_HOME/automill/config.ini`` when that is
set), or the path in ``AUTOMILL_CONFIG``. It holds one ``[core]`` section::

    [core]
    project = my-project
    location = us-central1
    endpoint = http://127.0.0.1:8080
    api_key = ...
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from automill.cli.errors import CliError

SECTION = "core"
#: key -> (default, environment variable)
KEYS: dict[str, tuple[str, str]] = {
    "project": ("my-project", "AUTOMILL_PROJECT"),
    "location": ("us-central1", "AUTOMILL_LOCATION"),
    "endpoint": ("http://127.0.0.1:8080", "AUTOMILL_ENDPOINT"),
    "api-key": ("", "AUTOMILL_API_KEY"),
}
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def path() -> Path:
    env = os.environ.get("AUTOMILL_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "automill" / "config.ini"


def key_name(key: str) -> str:
    """``api_key`` / ``API-KEY`` -> ``api-key``; an unknown key is a usage mistake (exit 3)."""
    k = key.strip().lower().replace("_", "-")
    if k not in KEYS:
        raise CliError("INVALID_ARGUMENT", f"unknown config key {key!r}; known keys: {', '.join(KEYS)}")
    return k


def _ini_key(key: str) -> str:
    return key.replace("-", "_")


def _read() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    p = path()
    try:
        parser.read(p, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CliError("INVALID_ARGUMENT", f"the config file {p} cannot be read: {exc}".replace("\n", " ")) from None
    return parser


def file_values() -> dict[str, str]:
    parser = _read()
    if not parser.has_section(SECTION):
        return {}
    return {k: parser.get(SECTION, _ini_key(k)) for k in KEYS if parser.has_option(SECTION, _ini_key(k))}


def validate(key: str, value: str) -> str:
    value = value.strip()
    if key == "endpoint":
        if not re.match(r"^https?://[^/\s]+", value):
            raise CliError("INVALID_ARGUMENT", f"endpoint {value!r} must be a URL like http://127.0.0.1:8080")
        return value.rstrip("/")
    if key in ("project", "location") and not SEGMENT.match(value):
        raise CliError("INVALID_ARGUMENT", f"{key} {value!r} must be letters, digits, '.', '_' or '-'")
    return value


def write(key: str, value: str | None) -> Path:
    """Set (or with ``None`` remove) one key in the file; the file is private (it may hold an API key)."""
    parser = _read()
    if not parser.has_section(SECTION):
        parser.add_section(SECTION)
    if value is None:
        parser.remove_option(SECTION, _ini_key(key))
    else:
        parser.set(SECTION, _ini_key(key), value)
    p = path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            parser.write(f)
        os.replace(tmp, p)
    except OSError as exc:
        raise CliError("INVALID_ARGUMENT", f"cannot write the config file {p}: {exc.strerror or exc}") from None
    return p


@dataclass
class Resolved:
    """Effective settings and where each came from (flag, env, file or default)."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.values["project"]

    @property
    def location(self) -> str:
        return self.values["location"]

    @property
    def endpoint(self) -> str:
        return self.values["endpoint"].rstrip("/")

    @property
    def api_key(self) -> str:
        return self.values["api-key"]

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


def resolve(**flags: str | None) -> Resolved:
    """Flags (``project=``, ``location=``, ``endpoint=``) > AUTOMILL_* variables > file > defaults."""
    out = Resolved()
    stored = file_values()
    for key, (default, env) in KEYS.items():
        flag = flags.get(key.replace("-", "_"))
        if flag:
            out.values[key], out.sources[key] = validate(key, flag), "flag"
        elif os.environ.get(env):
            out.values[key], out.sources[key] = validate(key, os.environ[env]), f"env {env}"
        elif stored.get(key):
            out.values[key], out.sources[key] = validate(key, stored[key]), "file"
        else:
            out.values[key], out.sources[key] = default, "default"
    return out
