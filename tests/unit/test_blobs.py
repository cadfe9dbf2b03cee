"""BlobStore: gs:// URIs resolved to bucket folders that no key can leave."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automill.core.errors import InvalidArgument, NotFound, PermissionDenied
from automill.store.blobs import BlobStore, split_gs


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    (tmp_path / "bucket").mkdir()
    return BlobStore(tmp_path / "data", {"bkt": str(tmp_path / "bucket")})


# -- split_gs --------------------------------------------------------------------------------------


def test_split_gs() -> None:
    assert split_gs("gs://bkt/a/c.csv") == ("bkt", "a/c.csv")
    assert split_gs("gs://bkt") == ("bkt", "")
    assert split_gs("gs://bkt/") == ("bkt", "")


@pytest.mark.parametrize("uri", ["s3://b/key", "/local/path", "b/key", "GS://b/key", "gs:/b/key", "gs:///key", ""])
def test_split_gs_rejects_non_gs(uri: str) -> None:
    with pytest.raises(InvalidArgument):
        split_gs(uri)


# -- mapped and unmapped buckets -------------------------------------------------------------------


def test_mapped_bucket_reads_and_writes(store: BlobStore, tmp_path: Path) -> None:
    store.write_text("gs://bkt/dir/sub/hello.txt", "héllo")
    assert (tmp_path / "bucket" / "dir" / "sub" / "hello.txt").read_text(encoding="utf-8") == "héllo"
    assert store.read_text("gs://bkt/dir/sub/hello.txt") == "héllo"
    assert store.read_bytes("gs://bkt/dir/sub/hello.txt") == "héllo".encode()
    assert store.exists("gs://bkt/dir/sub/hello.txt")
    assert not store.exists("gs://bkt/dir/sub/nope.txt")
    (tmp_path / "bucket" / "placed.bin").write_bytes(b"\x00\x01\x02")
    assert store.read_bytes("gs://bkt/placed.bin") == b"\x00\x01\x02"
    # nothing went to the default location
    assert not (tmp_path / "data" / "buckets" / "bkt").exists()


def test_open_write_binary(store: BlobStore, tmp_path: Path) -> None:
    with store.open_write("gs://bkt/out/x.bin") as fh:
        fh.write(b"abc")
    assert (tmp_path / "bucket" / "out" / "x.bin").read_bytes() == b"abc"


def test_dot_segments_and_double_slashes_are_normalised(store: BlobStore, tmp_path: Path) -> None:
    store.write_text("gs://bkt/./a//b.txt", "x")
    assert (tmp_path / "bucket" / "a" / "b.txt").read_text() == "x"
    assert store.read_text("gs://bkt/a/./b.txt") == "x"


def test_unmapped_bucket_lives_under_data_dir(store: BlobStore, tmp_path: Path) -> None:
    store.write_text("gs://other/k/v.txt", "v")
    assert (tmp_path / "data" / "buckets" / "other" / "k" / "v.txt").read_text() == "v"
    assert store.read_text("gs://other/k/v.txt") == "v"
    (tmp_path / "data" / "buckets" / "third").mkdir(parents=True)
    (tmp_path / "data" / "buckets" / "third" / "f.csv").write_text("a,b\n")
    assert store.read_text("gs://third/f.csv") == "a,b\n"


def test_utf8_bom_is_stripped(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "bom.csv").write_bytes(b"\xef\xbb\xbfa,b\n")
    assert store.read_text("gs://bkt/bom.csv") == "a,b\n"


# -- escaping the bucket ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "gs://bkt/../secret.txt",
        "gs://bkt/dir/../../secret.txt",
        "gs://bkt/dir/..",
        "gs://bkt/..",
        "gs://bkt//etc/passwd",
        "gs://bkt//secret.txt",
        "gs://bkt/a\\..\\..\\secret.txt",
        "gs://bkt/a\x00b",
        "gs://other/../b/x",
    ],
)
def test_paths_outside_the_bucket_are_refused(store: BlobStore, tmp_path: Path, uri: str) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    with pytest.raises(PermissionDenied):
        store.read_bytes(uri)
    with pytest.raises(PermissionDenied):
        store.write_text(uri, "pwned")
    assert (tmp_path / "secret.txt").read_text() == "top secret"


def test_symlinked_directory_pointing_outside_is_refused(store: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside, tmp_path / "bucket" / "link")
    with pytest.raises(PermissionDenied):
        store.read_text("gs://bkt/link/secret.txt")
    with pytest.raises(PermissionDenied):
        store.exists("gs://bkt/link/secret.txt")
    with pytest.raises(PermissionDenied):
        store.write_text("gs://bkt/link/new.txt", "pwned")
    assert not (outside / "new.txt").exists()


def test_symlinked_file_pointing_outside_is_refused(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", tmp_path / "bucket" / "file-link.txt")
    with pytest.raises(PermissionDenied):
        store.read_text("gs://bkt/file-link.txt")
    with pytest.raises(PermissionDenied):
        store.write_text("gs://bkt/file-link.txt", "pwned")
    assert (tmp_path / "secret.txt").read_text() == "top secret"


def test_symlink_to_a_sibling_with_the_bucket_name_as_prefix_is_refused(store: BlobStore, tmp_path: Path) -> None:
    sibling = tmp_path / "bucket2"  # "…/bucket2" starts with "…/bucket" as a string, but is outside it
    sibling.mkdir()
    (sibling / "x.txt").write_text("x")
    os.symlink(sibling, tmp_path / "bucket" / "sib")
    with pytest.raises(PermissionDenied):
        store.read_text("gs://bkt/sib/x.txt")


def test_symlink_staying_inside_the_bucket_is_allowed(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "real").mkdir()
    (tmp_path / "bucket" / "real" / "f.txt").write_text("inside")
    os.symlink(tmp_path / "bucket" / "real", tmp_path / "bucket" / "alias")
    assert store.read_text("gs://bkt/alias/f.txt") == "inside"


def test_bucket_root_reached_through_a_symlink_works(tmp_path: Path) -> None:
    (tmp_path / "real-root").mkdir()
    os.symlink(tmp_path / "real-root", tmp_path / "root-link")
    store = BlobStore(tmp_path / "data", {"bkt": str(tmp_path / "root-link")})
    store.write_text("gs://bkt/a.txt", "a")
    assert (tmp_path / "real-root" / "a.txt").read_text() == "a"
    assert store.read_text("gs://bkt/a.txt") == "a"


# -- errors ----------------------------------------------------------------------------------------


def test_missing_object_is_not_found_naming_the_uri(store: BlobStore) -> None:
    with pytest.raises(NotFound) as info:
        store.read_bytes("gs://bkt/missing/file.csv")
    assert "gs://bkt/missing/file.csv" in str(info.value)
    with pytest.raises(NotFound) as info:
        store.read_text("gs://nobucket/file.csv", max_bytes=10)
    assert "gs://nobucket/file.csv" in str(info.value)


def test_directory_is_not_found(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "adir").mkdir()
    with pytest.raises(NotFound):
        store.read_bytes("gs://bkt/adir")


def test_max_bytes(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "ten.txt").write_bytes(b"0123456789")
    assert store.read_bytes("gs://bkt/ten.txt", max_bytes=10) == b"0123456789"
    assert store.read_text("gs://bkt/ten.txt", max_bytes=100) == "0123456789"
    with pytest.raises(InvalidArgument) as info:
        store.read_bytes("gs://bkt/ten.txt", max_bytes=9)
    assert "gs://bkt/ten.txt" in str(info.value)
    with pytest.raises(InvalidArgument):
        store.read_text("gs://bkt/ten.txt", max_bytes=0)


def test_non_utf8_is_invalid_argument(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "latin1.csv").write_bytes("café,x\n".encode("latin-1"))
    with pytest.raises(InvalidArgument) as info:
        store.read_text("gs://bkt/latin1.csv")
    assert "gs://bkt/latin1.csv" in str(info.value)
    # the bytes are still readable as bytes
    assert store.read_bytes("gs://bkt/latin1.csv") == "café,x\n".encode("latin-1")


# -- wildcards -------------------------------------------------------------------------------------


def test_expand_wildcard_returns_sorted_gs_uris(store: BlobStore, tmp_path: Path) -> None:
    d = tmp_path / "bucket" / "dir"
    (d / "nested").mkdir(parents=True)
    for name in ["c.csv", "a.csv", "b.csv", "notes.txt"]:
        (d / name).write_text(name)
    (d / "nested" / "z.csv").write_text("z")
    assert store.expand("gs://bkt/dir/*.csv") == ["gs://bkt/dir/a.csv", "gs://bkt/dir/b.csv", "gs://bkt/dir/c.csv"]
    assert store.expand("gs://bkt/dir/?.csv") == ["gs://bkt/dir/a.csv", "gs://bkt/dir/b.csv", "gs://bkt/dir/c.csv"]
    assert store.expand("gs://bkt/dir/[ab].csv") == ["gs://bkt/dir/a.csv", "gs://bkt/dir/b.csv"]
    assert store.expand("gs://bkt/dir/*/*.csv") == ["gs://bkt/dir/nested/z.csv"]
    assert store.expand("gs://bkt/nothing/*.csv") == []
    for uri in store.expand("gs://bkt/dir/*.csv"):
        assert store.read_text(uri).endswith(".csv")


def test_expand_on_unmapped_bucket(store: BlobStore, tmp_path: Path) -> None:
    d = tmp_path / "data" / "buckets" / "other" / "in"
    d.mkdir(parents=True)
    (d / "2.csv").write_text("2")
    (d / "1.csv").write_text("1")
    assert store.expand("gs://other/in/*.csv") == ["gs://other/in/1.csv", "gs://other/in/2.csv"]


def test_expand_without_wildcard_returns_the_uri(store: BlobStore) -> None:
    assert store.expand("gs://bkt/dir/x.csv") == ["gs://bkt/dir/x.csv"]


def test_expand_refuses_escaping_patterns(store: BlobStore) -> None:
    with pytest.raises(PermissionDenied):
        store.expand("gs://bkt/../*.csv")
    with pytest.raises(PermissionDenied):
        store.expand("gs://bkt//etc/*")


def test_bucket_mapped_to_an_fsspec_url(tmp_path) -> None:
    """The object-store path (s3://, gs:// through s3fs/gcsfs) is the same code as this memory:// one."""
    from automill.store.blobs import BlobStore

    store = BlobStore(tmp_path / "data", {"remote": "memory://automill-test-bucket/prefix"})
    store.write_text("gs://remote/dir/a.csv", "TRAIN,hello,x\n")
    store.write_text("gs://remote/dir/b.csv", "TEST,bye,y\n")
    assert store.read_text("gs://remote/dir/a.csv") == "TRAIN,hello,x\n"
    assert store.expand("gs://remote/dir/*.csv") == ["gs://remote/dir/a.csv", "gs://remote/dir/b.csv"]
    assert store.exists("gs://remote/dir/b.csv") and not store.exists("gs://remote/dir/c.csv")
    import pytest

    from automill.core.errors import NotFound, PermissionDenied

    with pytest.raises(NotFound):
        store.read_text("gs://remote/dir/c.csv")
    with pytest.raises(PermissionDenied):
        store.read_text("gs://remote/../other/x.csv")
    assert not (tmp_path / "data").exists()  # nothing landed on the local disk
