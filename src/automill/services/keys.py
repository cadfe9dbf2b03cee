"""API keys: the key format, the slow salted hash of the secret, the key table, and the request check.

A key is ``am_<key id>_<secret>``: ``am_`` says what it is (secret scanners and people recognise it),
the key id (12 hex characters, public) finds the row, the secret (``secrets.token_urlsafe(32)``: 256
random bits) proves the caller holds the key. Only a salted hash of the whole key is stored, made with
scrypt (``hashlib.scrypt``, N=2^14, r=8, p=1: 16 MiB and about 0.1 s per check): memory-hard, a
well-studied KDF (RFC 7914), and in the standard library, so no new dependency rides into every
install and exported model image. Hashes are compared with ``hmac.compare_digest`` (constant time).

To keep the KDF off every request, a verified key is cached in memory (SHA-256 of the key -> its row,
at most ``CACHE_SIZE`` entries, least recently used out). A cached entry is trusted for
``RECHECK_SECONDS``; after that the row is read again (a cheap read, no KDF), so a key revoked or
expired in the database, by another process, is refused within seconds.

Secrets never reach a log, the audit log, or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from automill.core.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from automill.services.access import ALL_PROJECTS, ANONYMOUS, ROLES, Principal
from automill.store.db import Database, utcnow
from automill.store.tables import ApiKeyRow

log = logging.getLogger("automill.keys")

PREFIX = "am"
KEY_ID_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
KEY_RE = re.compile(r"^am_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

#: scrypt's cost parameters (the scrypt paper's interactive-login setting; 16 MiB per check).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
SALT_BYTES = 16

CACHE_SIZE = 1024
RECHECK_SECONDS = 2.0
#: A key's last-used time is written at most this often (one write per key per minute, not per request).
LAST_USED_EVERY_SECONDS = 60.0

MISSING = (
    "this server requires an API key: send it as 'x-goog-api-key: KEY' or 'Authorization: Bearer KEY' "
    "(an administrator creates keys with `automill keys create`)"
)
INVALID = "the API key is not valid: it is malformed or unknown to this server"


# -- the format and the hash ---------------------------------------------------------------------------
def new_key() -> tuple[str, str]:
    """-> (key id, whole key ``am_<key id>_<secret>``)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse_key(text: str) -> str | None:
    """The key id of a well-formed key, else None."""
    m = KEY_RE.match(text)
    return m.group(1) if m else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_key(key: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt>$<hash>`` (base64) of the whole key with a fresh random salt."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    dk = hashlib.scrypt(
        key.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN, maxmem=64 * 1024 * 1024
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(dk)}"


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` hashes to ``stored`` (constant-time comparison; False for a malformed hash)."""
    try:
        algo, n, r, p, salt, want = stored.split("$")
        if algo != "scrypt":
            return False
        expected = _unb64(want)
        got = hashlib.scrypt(
            key.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


class KeyRefused(Unauthenticated):
    """A known key that may no longer be used (revoked, expired); ``key_name`` is for the audit log."""

    def __init__(self, message: str, key_name: str) -> None:
        super().__init__(message)
        self.key_name = key_name


# -- the table -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but its secret and hash."""

    name: str
    key_id: str
    project: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKeyRow) -> KeyInfo:
        return cls(
            name=row.name,
            key_id=row.key_id,
            project=row.project,
            role=row.role,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_json(self, now: datetime) -> dict[str, Any]:
        def ts(d: datetime | None) -> str | None:
            return d.isoformat(timespec="seconds") + "Z" if d else None

        return {
            "name": self.name,
            "keyId": self.key_id,
            "project": self.project,
            "role": self.role,
            "state": self.state(now),
            "created": ts(self.created_at),
            "expires": ts(self.expires_at),
            "revoked": ts(self.revoked_at),
            "lastUsed": ts(self.last_used_at),
        }


def create_key(
    db: Database, *, project: str, role: str, name: str = "", expires_at: datetime | None = None
) -> tuple[KeyInfo, str]:
    """A new key -> (its info, the whole key: shown once, stored only as a hash)."""
    if role not in ROLES:
        raise InvalidArgument(f"role {role!r} must be one of {', '.join(ROLES)}", field="role")
    if project != ALL_PROJECTS and not PROJECT_RE.match(project):
        raise InvalidArgument(
            f"project {project[:80]!r} must be a project ID (letters, digits, '.', '_', '-') or '*' for every project",
            field="project",
        )
    key_id, key = new_key()
    name = name or f"key-{key_id}"
    if not NAME_RE.match(name):
        raise InvalidArgument(f"key name {name[:80]!r} must be 1-64 letters, digits, '.', '_' or '-'", field="name")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument("the expiry must be in the future", field="expires")
    digest = hash_key(key)
    with db.tx() as s:
        if s.execute(select(ApiKeyRow.id).where(ApiKeyRow.name == name)).first() is not None:
            raise AlreadyExists(f"a key named {name!r} exists already (names stay taken after a revoke)")
        row = ApiKeyRow(
            key_id=key_id,
            name=name,
            project=project,
            role=role,
            secret_hash=digest,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
        s.add(row)
        s.flush()
        info = KeyInfo.of(row)
    log.info("API key %s created (role %s on project %s)", name, role, project)
    return info, key


def list_keys(db: Database) -> list[KeyInfo]:
    with db.tx() as s:
        return [KeyInfo.of(r) for r in s.execute(select(ApiKeyRow).order_by(ApiKeyRow.id)).scalars()]


def revoke_key(db: Database, name: str) -> tuple[KeyInfo, bool]:
    """-> (the key, whether this call revoked it: False when it was revoked already)."""
    with db.tx() as s:
        row = s.execute(select(ApiKeyRow).where(ApiKeyRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no key named {name!r} (see `automill keys list`)")
        fresh = row.revoked_at is None
        if fresh:
            row.revoked_at = utcnow()
        info = KeyInfo.of(row)
    if fresh:
        log.info("API key %s revoked", name)
    return info, fresh


def keys_exist(db: Database) -> bool:
    """Whether any key was ever created (revoked and expired ones count: revoking every key does not
    reopen a server to anonymous callers)."""
    with db.tx() as s:
        return s.execute(select(ApiKeyRow.id).limit(1)).first() is not None


# -- the request check ---------------------------------------------------------------------------------
@dataclass
class _Entry:
    info: KeyInfo
    key_row_id: int
    secret_hash: str
    checked: float


class Authenticator:
    """Turns a request's credential into a Principal, or Unauthenticated.

    ``open_when_keyless``: while no key exists, requests without one are the anonymous admin (a
    loopback server, or one started with --insecure); otherwise they are refused.
    """

    def __init__(self, db: Database, *, open_when_keyless: bool) -> None:
        self.db = db
        self.open_when_keyless = open_when_keyless
        self._keyed = False  # sticky: once a key exists, keys stay required
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._bad: OrderedDict[str, float] = OrderedDict()  # recently refused wrong secrets: no KDF again
        self._used: dict[int, float] = {}
        self._lock = threading.Lock()

    def keyed(self) -> bool:
        if not self._keyed:
            self._keyed = keys_exist(self.db)
        return self._keyed

    def authenticate(self, credential: str | None) -> Principal:
        """``credential``: the key sent (None: none sent; "": something unusable, e.g. Basic auth)."""
        if not self.keyed():
            if self.open_when_keyless:
                return ANONYMOUS
            raise Unauthenticated(
                "this server is not on a loopback address and has no API keys yet: an "
                "administrator creates one with `automill keys create`"
            )
        if credential is None:
            raise Unauthenticated(MISSING)
        info, row_id = self._verified(credential)
        now = utcnow()
        if info.revoked_at is not None:
            raise KeyRefused(f"the API key {info.name!r} was revoked", info.name)
        if info.expires_at is not None and info.expires_at <= now:
            raise KeyRefused(
                f"the API key {info.name!r} expired at {info.expires_at.isoformat(timespec='seconds')}Z", info.name
            )
        self._touch(row_id)
        return Principal(name=info.name, role=info.role, project=info.project)

    def _verified(self, key: str) -> tuple[KeyInfo, int]:
        key_id = parse_key(key)
        if key_id is None:
            raise Unauthenticated(INVALID)
        digest = hashlib.sha256(key.encode()).hexdigest()
        mono = time.monotonic()
        with self._lock:
            entry = self._cache.get(digest)
            if entry is not None:
                self._cache.move_to_end(digest)
                if mono - entry.checked < RECHECK_SECONDS:
                    return entry.info, entry.key_row_id
            bad_at = self._bad.get(digest)
        if bad_at is not None and mono - bad_at < 60:
            raise Unauthenticated(INVALID)
        with self.db.tx() as s:
            row = s.execute(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id)).scalar_one_or_none()
            found = (KeyInfo.of(row), row.id, row.secret_hash) if row is not None else None
        if found is None:
            self._forget(digest)
            raise Unauthenticated(INVALID)
        info, row_id, stored = found
        cached = entry is not None and hmac.compare_digest(entry.secret_hash, stored)
        if not cached and not verify_key(key, stored):
            with self._lock:
                self._bad[digest] = mono
                while len(self._bad) > CACHE_SIZE:
                    self._bad.popitem(last=False)
            raise Unauthenticated(INVALID)
        with self._lock:
            self._cache[digest] = _Entry(info=info, key_row_id=row_id, secret_hash=stored, checked=mono)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return info, row_id

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._cache.pop(digest, None)

    def _touch(self, row_id: int) -> None:
        mono = time.monotonic()
        with self._lock:
            last = self._used.get(row_id)
            if last is not None and mono - last < LAST_USED_EVERY_SECONDS:
                return
            self._used[row_id] = mono
        try:
            with self.db.tx() as s:
                s.execute(update(ApiKeyRow).where(ApiKeyRow.id == row_id).values(last_used_at=utcnow()))
        except Exception as exc:
            log.warning("could not record a key's last use: %s", type(exc).__name__)
