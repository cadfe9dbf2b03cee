"""Imported media (images), kept content-addressed under ``<data-dir>/media``.

A dataset row names its image by key (``<sha256>.<ext>``), so a re-import of the same bytes is the
same example, and the source bucket may change or vanish without the dataset losing data. Files are
written to a temporary name and renamed, so a crash never leaves a half-written image under a key.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from automill.core.errors import NotFound

_KEY_RE = re.compile(r"^[0-9a-f]{64}\.[a-z]{2,4}$")


class MediaStore:
    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / "media"

    def path(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"not a media key: {key!r}")
        return self.root / key[:2] / key

    def put(self, data: bytes, ext: str) -> str:
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return key

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the stored image {key} is missing from the media store") from None
