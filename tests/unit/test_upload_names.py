"""api.upload.clean_path: every file name or prefix an upload sends stays inside its bucket folder."""

from __future__ import annotations

import pytest

from automill.api.upload import MAX_FILES, UploadParser, body_limit, boundary_of, clean_path
from automill.core.errors import InvalidArgument

GOOD = {
    "a.csv": "a.csv",
    "photos/cat 1.jpg": "photos/cat 1.jpg",
    "été/naïve.csv": "été/naïve.csv",
    "...": "...",
    ".hidden": ".hidden",
    "x" * 255: "x" * 255,
}
BAD = {
    "..": "'..'",
    "../a.csv": "'..'",
    "a/../../b.csv": "'..'",
    "a/..": "'..'",
    "./a.csv": "'.'",
    "a//b.csv": "empty",
    "a/": "empty",
    "/etc/passwd": "absolute",
    "C:/Windows/win.ini": "absolute",
    "c:x.csv": "absolute",
    "dir\\a.csv": "absolute",
    "\\\\server\\share\\a.csv": "absolute",
    "bad\x00.csv": "control",
    "bad\x1b[31m.csv": "control",
    "line\nbreak.csv": "control",
    "del\x7f.csv": "control",
    "c1\x85.csv": "control",
    "\u202egpj.exe": "control",
    "a*.csv": "wildcard",
    "a?.csv": "wildcard",
    "a[1].csv": "wildcard",
    "x" * 256: "255 bytes",
    "é" * 128: "255 bytes",
    "": "needs a name",
}


@pytest.mark.parametrize("raw", list(GOOD))
def test_names_kept(raw: str) -> None:
    assert clean_path(raw, "file name") == GOOD[raw]


@pytest.mark.parametrize("raw", list(BAD))
def test_names_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        clean_path(raw, "file name")
    assert BAD[raw] in err.value.message and err.value.field == "files"
    assert all(c.isprintable() for c in err.value.message)  # the name is shown without its control characters


def test_prefix() -> None:
    assert clean_path("", "prefix", allow_empty=True) == ""
    assert clean_path("in/batch/", "prefix", allow_empty=True) == "in/batch"
    for bad in ("/abs", "../x", "a/./b", "a\x00"):
        with pytest.raises(InvalidArgument) as err:
            clean_path(bad, "prefix", allow_empty=True)
        assert err.value.field == "prefix"


def _part(name: bytes, data: bytes) -> bytes:
    return b'--zz\r\nContent-Disposition: form-data; name="f"; filename="' + name + b'"\r\n\r\n' + data + b"\r\n"


def test_parser_limits_and_names() -> None:
    from python_multipart.multipart import MultipartParser

    def parse(body: bytes, file_limit: int = 100, total_limit: int = 150) -> UploadParser:
        up = UploadParser("pre", file_limit, total_limit)
        mp = MultipartParser(boundary_of("multipart/form-data; boundary=zz"), up.callbacks())
        try:
            mp.write(body + b"--zz--\r\n")
            mp.finalize()
        finally:
            up.close()
        return up

    ok = parse(_part(b"a.csv", b"x" * 100) + _part("é.csv".encode(), b"y"))
    assert [(f.name, f.size) for f in ok.files] == [("pre/a.csv", 100), ("pre/é.csv", 1)]
    with pytest.raises(InvalidArgument, match="over the limit of 100 bytes a file") as big:
        parse(_part(b"a.csv", b"x" * 101))
    assert getattr(big.value, "http_status", None) == 413
    with pytest.raises(InvalidArgument, match="over the limit of 150 bytes an upload"):
        parse(_part(b"a.csv", b"x" * 80) + _part(b"b.csv", b"x" * 80))
    with pytest.raises(InvalidArgument, match=r"'\.\.'"):
        parse(_part(b"../x.csv", b"x"))
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        parse(_part(b"\xff\xfe.csv", b"x"))
    with pytest.raises(InvalidArgument, match="sent twice"):
        parse(_part(b"a.csv", b"x") + _part(b"a.csv", b"y"))
    with pytest.raises(InvalidArgument, match="1024 bytes"):
        parse(_part(("d" * 200 + "/").encode() * 6 + b"a.csv", b"x"))
    with pytest.raises(InvalidArgument, match="multipart/form-data") as wrong:
        boundary_of("application/json")
    assert wrong.value.field == "Content-Type"
    assert body_limit(1000) > 1000 + MAX_FILES * 100
