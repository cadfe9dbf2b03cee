"""Resource names and Google's per-problem ID prefixes."""

from __future__ import annotations

import re

from automill.core.errors import InvalidArgument

#: problem type -> Google's prefix for model, dataset and operation IDs.
PREFIXES: dict[str, str] = {
    "text_classification": "TCN",
    "text_extraction": "TEN",
    "text_sentiment": "TST",
    "image_classification": "ICN",
    "image_object_detection": "IOD",
    "translation": "TRL",
}

LOCATION_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")  # shape only; the parts are checked below

#: The parts of a resource name (checked with fullmatch). Google's project ids are 6-30 lowercase letters,
#: digits and hyphens, or a project number; Automill also takes short ids like ``local`` and '_' / '.'.
#: Lengths stay inside the store's columns (project 128, location 64, ids 64-128).
PROJECT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
LOCATION_ID_RE = re.compile(r"[a-z0-9-]{1,63}")
RESOURCE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def make_id(prefix: str, number: int) -> str:
    """A never-reused ID: prefix + a 19-digit number from the database sequence."""
    return f"{prefix}{10**18 + number}"


def parent_of(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


def split_parent(parent: str) -> tuple[str, str]:
    m = LOCATION_RE.fullmatch(parent or "")
    if not m:
        raise InvalidArgument(
            f"parent {_shown(parent)} must look like projects/PROJECT/locations/LOCATION", field="parent"
        )
    _check_parts(m.group(1), m.group(2), "parent")
    return m.group(1), m.group(2)


def split_name(name: str, collection: str) -> tuple[str, str, str]:
    """``projects/P/locations/L/<collection>/ID`` -> (P, L, ID)."""
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != collection or not parts[5]:
        raise InvalidArgument(
            f"name {_shown(name)} must look like projects/PROJECT/locations/LOCATION/{collection}/ID", field="name"
        )
    _check_parts(parts[1], parts[3], "name")
    if not RESOURCE_ID_RE.fullmatch(parts[5]):
        raise InvalidArgument(
            f"name: the {collection} id {_shown(parts[5])} is invalid: 1 to 128 letters, digits, '-' and '_'",
            field="name",
        )
    return parts[1], parts[3], parts[5]


def _check_parts(project: str, location: str, field: str) -> None:
    if not PROJECT_ID_RE.fullmatch(project):
        raise InvalidArgument(
            f"{field}: the project id {_shown(project)} is invalid: 1 to 63 letters, digits, '-', "
            "'_' and '.', starting with a letter or digit",
            field=field,
        )
    if not LOCATION_ID_RE.fullmatch(location):
        raise InvalidArgument(
            f"{field}: the location {_shown(location)} is invalid: 1 to 63 lowercase letters, digits and '-'",
            field=field,
        )


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (ids may be huge)."""
    text = str(text)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"
