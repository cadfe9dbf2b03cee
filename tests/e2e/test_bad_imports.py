"""Bad imports give clear errors or partial failures and change nothing else."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Server
from tests.e2e.rest import Rest

GOOD = [
    f'TRAIN,"message number {i} about {"cats" if i % 2 else "dogs"}",{"cat" if i % 2 else "dog"}' for i in range(30)
]


def write(server: Server, name: str, text: str) -> str:
    path = server.bucket_path("work") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return f"gs://work/{name}"


def state(api: Rest, dataset: str) -> tuple[int, list[str]]:
    ds = api.call("GET", dataset)
    specs = api.call("GET", f"{dataset}/annotationSpecs").get("annotationSpecs", [])
    return ds.get("exampleCount", 0), sorted(s["displayName"] for s in specs)


def import_(api: Rest, dataset: str, *uris: str) -> dict:
    return api.wait(
        api.call("POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": list(uris)}}})
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_imports(server: Server) -> None:
    api = Rest(server.endpoint)
    dataset = api.create_text_dataset("bad_imports")
    ok = import_(api, dataset, write(server, "good.csv", "\n".join(GOOD) + "\n"))
    assert "error" not in ok
    baseline = state(api, dataset)
    assert baseline == (30, ["cat", "dog"])

    # A CSV that cannot be parsed fails whole and names the file and row.
    op = import_(api, dataset, write(server, "malformed.csv", 'TRAIN,"new text,cat\nTRAIN,"other",dog\n'))
    assert op["error"]["code"] == 3 and "cannot parse CSV" in op["error"]["message"]
    assert "gs://work/malformed.csv" in op["error"]["message"]
    assert state(api, dataset) == baseline

    # A missing CSV fails whole with NOT_FOUND.
    op = import_(api, dataset, "gs://work/nope.csv")
    assert op["error"]["code"] == 5 and "gs://work/nope.csv" in op["error"]["message"]
    assert state(api, dataset) == baseline

    # A path leaving its bucket is refused before anything is queued.
    err = api.call(
        "POST",
        f"{dataset}:importData",
        {"inputConfig": {"gcsSource": {"inputUris": ["gs://work/../../etc/passwd"]}}},
        expect=403,
    )
    assert err["error"]["status"] == "PERMISSION_DENIED" and "outside its bucket" in err["error"]["message"]
    outside = server.data_dir / "secret.txt"
    outside.write_text("top secret")
    os.symlink(outside, server.bucket_path("work") / "link.txt")

    # Row-level problems become partial failures naming file and row; good rows still import.
    rows = (
        GOOD[:1]
        + [
            'TRIAN,"typo in ml use",cat',  # row 2
            f'TRAIN,"a forty character label",{"x" * 40}',  # row 3
            "TRAIN,gs://work/missing.txt,cat",  # row 4
            "TRAIN,gs://work/../outside.txt,cat",  # row 5
            "TRAIN,gs://work/link.txt,cat",  # row 6
        ]
        + [f'TEST,"fresh text {i}",dog' for i in range(60)]
    )
    op = import_(api, dataset, write(server, "mixed.csv", "\n".join(rows) + "\n"))
    assert "error" not in op, op
    failures = op["metadata"]["partialFailures"]
    messages = " | ".join(f["message"] for f in failures)
    assert len(failures) == 5, messages
    assert all(f["code"] == 3 for f in failures)
    assert 'row 2: unknown ML_USE "TRIAN"' in messages
    assert "row 3:" in messages and "x" * 40 in messages and "32 characters" in messages
    assert "row 4:" in messages and "gs://work/missing.txt not found" in messages
    assert "row 5:" in messages and "outside its bucket" in messages
    assert "row 6:" in messages and "outside its bucket" in messages
    assert "top secret" not in messages
    count, labels = state(api, dataset)
    assert count == 30 + 60 and labels == ["cat", "dog"]

    # Too many bad rows: the whole import fails and changes nothing.
    before = state(api, dataset)
    bad = [f'TRAIN,"bad {i}",{"y" * 40}' for i in range(10)] + [f'TRAIN,"new good {i}",newlabel' for i in range(10)]
    op = import_(api, dataset, write(server, "mostly_bad.csv", "\n".join(bad) + "\n"))
    assert op["error"]["code"] == 3 and "nothing was imported" in op["error"]["message"]
    assert len(op["metadata"]["partialFailures"]) == 10
    assert state(api, dataset) == before  # no 'newlabel' spec, no new examples

    # MULTICLASS rows with two labels fail per row.
    op = import_(api, dataset, write(server, "two.csv", "\n".join([*GOOD, 'TRAIN,"two labels here",cat,dog']) + "\n"))
    assert "MULTICLASS" in op["metadata"]["partialFailures"][0]["message"]
