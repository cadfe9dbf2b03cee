"""Field rules of the AutoML API (display names, labels, descriptions)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from automill.core.errors import InvalidArgument

if TYPE_CHECKING:
    from automill.store.blobs import BlobStore

# Used with fullmatch: "$" alone would also match before a trailing newline ("name\n").
_DATASET_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


def dataset_display_name(name: str) -> str:
    if not _DATASET_NAME.fullmatch(name or ""):
        raise InvalidArgument(
            f"dataset.display_name {name!r} is invalid: 1 to 32 characters, letters, digits and underscores only",
            field="dataset.display_name",
        )
    return name


def model_display_name(name: str) -> str:
    if not _MODEL_NAME.fullmatch(name or ""):
        raise InvalidArgument(
            f"model.display_name {name!r} is invalid: 1 to 32 characters, letters, digits and underscores, "
            "starting with a letter",
            field="model.display_name",
        )
    return name


def description(text: str, field: str) -> str:
    if len(text) > 25_000:
        raise InvalidArgument(f"{field} is {len(text)} characters, over the limit of 25000", field=field)
    return text


def labels(values: dict[str, str], field: str) -> dict[str, str]:
    for key, value in values.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"{field} key {key!r} is invalid: lowercase letters, digits, '_' and '-', "
                "starting with a letter, at most 63 characters",
                field=field,
            )
        if not _LABEL_VALUE.fullmatch(value):
            raise InvalidArgument(
                f"{field} value {value!r} for {key!r} is invalid: lowercase letters, digits, "
                "'_' and '-', at most 63 characters",
                field=field,
            )
    return dict(values)


def output_prefix(output_config: dict[str, Any], blobs: BlobStore) -> str:
    """``output_config.gcs_destination.output_uri_prefix``: required, a gs:// URI the server may write."""
    from automill.store.blobs import split_gs

    prefix = str((output_config.get("gcsDestination") or {}).get("outputUriPrefix", "") or "")
    if not prefix:
        raise InvalidArgument(
            "output_config.gcs_destination.output_uri_prefix is required",
            field="output_config.gcs_destination.output_uri_prefix",
        )
    split_gs(prefix)
    blobs.resolve(prefix)
    blobs.check_writable(prefix)
    return prefix
