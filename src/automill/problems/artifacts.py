"""Model files that are pickles: written by this server's training, read back to serve or resume.

Unpickling runs code named in the file, so only files from the server's own model store are ever
read here: a trained model's folder or a base model's (``baseModelId``), both written by
:func:`write_pickle` after a training on this server. No request, import or upload supplies one.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


def write_pickle(path: Path, value: Any) -> None:
    with open(path, "wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)


def read_pickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own training output, never a client's file (see above)
