"""Imported media (images), kept content-addressed under ``<data-dir>/media``.

A dataset row names its image by key (``<sha256>.<ext>``), so a re-import of the same bytes is the
same example, and the source bucket may change or vanish without the dataset losing data. Files are
written to a temporary name and renamed, so a crash never leaves a half-written image under a key.

Media are shared between datasets and freed by reference (store/housekeeping.py): a dataset's delete
removes the keys no other example names. An import that is still running has not written its
example rows yet, so each key it stores is also *pinned*: hard-linked under
``media/.pins/<operation id>/``. Whatever a concurrent delete removes meanwhile, the import's commit
puts back from its pins (:meth:`MediaStore.restore`) under the media lock, then drops them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from automill.core.errors import NotFound

_KEY_RE = re.compile(r"^[0-9a-f]{64}\.[a-z]{2,4}$")
_PIN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def is_key(name: str) -> bool:
    return bool(_KEY_RE.match(name))


class MediaStore:
    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / "media"
        self.pins_root = self.root / ".pins"

    def path(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"not a media key: {key!r}")
        return self.root / key[:2] / key

    def pin_dir(self, pin: str) -> Path:
        if not _PIN_RE.match(pin) or pin in (".", ".."):
            raise ValueError(f"not a pin name: {pin!r}")
        return self.pins_root / pin

    def put(self, data: bytes, ext: str, pin: str | None = None) -> str:
        """Store ``data`` -> its key. ``pin`` (an operation id): keep a hard link to it until
        :meth:`restore`, so that a delete running meanwhile cannot lose it."""
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.path(key)
        pin_path = self.pin_dir(pin) / key if pin else None
        if pin_path is not None:
            pin_path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            if path.exists():
                if pin_path is None:
                    return key
                try:
                    os.link(path, pin_path)
                    return key
                except FileExistsError:
                    return key
                except FileNotFoundError:  # removed by a delete just now: write it again
                    continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                if pin_path is not None:
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, pin_path)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return key
        raise OSError(f"could not store media {key}: it kept being removed")

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the stored image {key} is missing from the media store") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def remove(self, key: str) -> int:
        """Unlink one key -> the bytes freed (0 when it was not there). Call it under the media lock."""
        path = self.path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    # -- pins ---------------------------------------------------------------------------------------
    def restore(self, pin: str) -> int:
        """Put back every pinned key a delete removed -> how many. Call it under the media lock,
        in the transaction that writes the examples naming them."""
        folder = self.pin_dir(pin)
        restored = 0
        if not folder.is_dir():
            return 0
        for pinned in folder.iterdir():
            if not is_key(pinned.name):
                continue
            path = self.path(pinned.name)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(pinned, path)
                restored += 1
            except FileExistsError:
                pass
        return restored

    def unpin(self, pin: str) -> None:
        shutil.rmtree(self.pin_dir(pin), ignore_errors=True)

    def pins(self) -> Iterator[tuple[str, Path]]:
        """(operation id, folder) of every pin folder."""
        if self.pins_root.is_dir():
            for folder in self.pins_root.iterdir():
                yield folder.name, folder

    # -- listing (housekeeping) ------------------------------------------------------------------------
    def files(self) -> Iterator[tuple[str, Path]]:
        """(key, path) of every stored key, and ("", path) of every other file (a partial write)."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.name == ".pins" or not sub.is_dir():
                continue
            for path in sub.iterdir():
                yield (path.name if is_key(path.name) and path.name[:2] == sub.name else ""), path
