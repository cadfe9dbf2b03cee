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

LOCATION_RE = re.compile(r"^projects/([^/]+)/locations/([^/]+)$")


def make_id(prefix: str, number: int) -> str:
    """A never-reused ID: prefix + a 19-digit number from the database sequence."""
    return f"{prefix}{10**18 + number}"


def parent_of(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


def split_parent(parent: str) -> tuple[str, str]:
    m = LOCATION_RE.match(parent)
    if not m:
        raise InvalidArgument(f"parent {parent!r} must look like projects/PROJECT/locations/LOCATION", field="parent")
    return m.group(1), m.group(2)


def split_name(name: str, collection: str) -> tuple[str, str, str]:
    """``projects/P/locations/L/<collection>/ID`` -> (P, L, ID)."""
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != collection or not parts[5]:
        raise InvalidArgument(
            f"name {name!r} must look like projects/PROJECT/locations/LOCATION/{collection}/ID", field="name"
        )
    return parts[1], parts[3], parts[5]
