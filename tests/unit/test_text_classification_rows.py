from __future__ import annotations

import os
import subprocess
import sys

import pytest

from automill.core.errors import InvalidArgument, NotFound, PermissionDenied
from automill.problems.rows import (
    LABEL_RE,
    ML_USES,
    RowFailure,
    assign_split,
    parse_import_csv,
)

URI = "gs://bkt/import.csv"

FILES = {
    "gs://bkt/a.txt": "text of file a",
    "gs://bkt/b.txt": "text of file b",
    "gs://bkt/empty.txt": "   \n",
}


def read_text(path: str) -> str:
    if path == "gs://other/secret.txt":
        raise PermissionDenied(f"{path} is outside the bucket")
    if path == "gs://bkt/latin1.txt":
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    try:
        return FILES[path]
    except KeyError:
        raise NotFound(f"{path} not found") from None


def parse(data: str, multilabel: bool = False, **kw):
    return parse_import_csv(data, uri=URI, read_text=read_text, multilabel=multilabel, **kw)


def test_constants():
    assert ML_USES == ("TRAIN", "VALIDATE", "TEST", "UNASSIGNED")
    assert LABEL_RE.match("a" * 32) and not LABEL_RE.match("a" * 33)
    assert not LABEL_RE.match("a b") and not LABEL_RE.match("")


def test_quoted_snippets_with_commas_and_newlines():
    data = 'TRAIN,"Hello, world",greeting\nTEST,"line one\nline two, still ""same""",other\n'
    res = parse(data)
    assert res.failures == []
    assert res.rows == 2
    assert [(e.content, e.ml_use, e.labels, e.source_uri) for e in res.examples] == [
        ("Hello, world", "TRAIN", ("greeting",), None),
        ('line one\nline two, still "same"', "TEST", ("other",), None),
    ]


def test_gcs_rows_read_files_and_report_failures_with_row_numbers():
    data = (
        "TRAIN,gs://bkt/a.txt,pos\n"
        "validate, gs://bkt/b.txt ,neg\n"
        "TEST,gs://bkt/missing.txt,pos\n"
        "TRAIN,gs://other/secret.txt,pos\n"
        "TRAIN,gs://bkt/latin1.txt,pos\n"
        "TRAIN,gs://bkt/empty.txt,pos\n"
    )
    res = parse(data)
    assert [(e.content, e.ml_use, e.source_uri) for e in res.examples] == [
        ("text of file a", "TRAIN", "gs://bkt/a.txt"),
        ("text of file b", "VALIDATE", "gs://bkt/b.txt"),
    ]
    assert res.rows == 6
    by_row = {f.row: f for f in res.failures}
    assert sorted(by_row) == [3, 4, 5, 6]
    assert by_row[3] == RowFailure(URI, 3, f"{URI} row 3: gs://bkt/missing.txt not found")
    assert "outside the bucket" in by_row[4].message and f"{URI} row 4:" in by_row[4].message
    assert "gs://bkt/latin1.txt" in by_row[5].message and "invalid start byte" in by_row[5].message
    assert "gs://bkt/empty.txt is empty" in by_row[6].message


def test_ml_use_column_is_optional():
    res = parse('just some text,pos\n"Unassigned text, with comma"\nunassigned,x y z,neg\n')
    assert res.failures == []
    assert [(e.content, e.ml_use, e.labels) for e in res.examples] == [
        ("just some text", "UNASSIGNED", ("pos",)),
        ("Unassigned text, with comma", "UNASSIGNED", ()),
        ("x y z", "UNASSIGNED", ("neg",)),
    ]


def test_unknown_ml_use_typo_is_a_row_failure():
    data = "TRAIN,good text,pos\nTRIAN,some text here,pos\nTESTT,gs://bkt/a.txt\n"
    res = parse(data)
    assert [e.content for e in res.examples] == ["good text"]
    assert [f.row for f in res.failures] == [2, 3]
    assert res.failures[0].message == (
        f'{URI} row 2: unknown ML_USE "TRIAN" (expected TRAIN, VALIDATE, TEST or UNASSIGNED)'
    )
    assert 'unknown ML_USE "TESTT"' in res.failures[1].message


def test_all_caps_word_followed_by_labels_is_text():
    res = parse("HELLO,greeting,caps\n", multilabel=True)
    assert res.failures == []
    assert res.examples[0].content == "HELLO"
    assert res.examples[0].labels == ("caps", "greeting")


def test_label_too_long():
    res = parse(f"TRAIN,text,{'a' * 33}\nTRAIN,other,{'b' * 32}\n")
    assert [f.row for f in res.failures] == [1]
    assert f'label "{"a" * 33}" is invalid' in res.failures[0].message
    assert "at most 32 characters" in res.failures[0].message
    assert res.examples[0].labels == ("b" * 32,)


def test_label_with_space():
    res = parse('TRAIN,text,"a b"\n')
    assert res.examples == []
    assert res.failures[0].message == (
        f'{URI} row 1: label "a b" is invalid: at most 32 characters, letters, digits and underscores only'
    )


def test_multiclass_rejects_two_labels_multilabel_accepts():
    data = "TRAIN,text one,a,b\nTRAIN,text two,a, a ,\n"
    res = parse(data, multilabel=False)
    assert [f.row for f in res.failures] == [1]
    assert "MULTICLASS datasets allow one label per row, got 2" in res.failures[0].message
    assert res.examples[0].labels == ("a",)

    res = parse(data, multilabel=True)
    assert res.failures == []
    assert [e.labels for e in res.examples] == [("a", "b"), ("a",)]


def test_too_many_labels():
    res = parse("TRAIN,text," + ",".join(f"l{i}" for i in range(4)) + "\n", multilabel=True, max_labels_per_row=3)
    assert len(res.failures) == 1 and "too many labels" in res.failures[0].message


def test_text_too_long_and_empty_content():
    res = parse("TRAIN,abcdef,x\nTRAIN,abc,x\nTRAIN,  ,x\nTRAIN\n", max_text_chars=5)
    assert [e.content for e in res.examples] == ["abc"]
    assert [f.row for f in res.failures] == [1, 3, 4]
    assert "too long" in res.failures[0].message
    assert "empty" in res.failures[1].message and "empty" in res.failures[2].message


def test_large_inline_snippet_above_csv_default_field_limit():
    big = "x" * 200_000
    res = parse(f'TRAIN,"{big}",a\n')
    assert res.failures == [] and res.examples[0].content == big


def test_duplicates_merge_in_multilabel():
    data = "text one,a\nTRAIN,text one,b\nother,c\nTEST, text one ,a\n"
    res = parse(data, multilabel=True)
    assert res.failures == []
    assert res.rows == 4
    assert [(e.content, e.ml_use, e.labels) for e in res.examples] == [
        ("text one", "TRAIN", ("a", "b")),
        ("other", "UNASSIGNED", ("c",)),
    ]


def test_duplicates_conflict_in_multiclass():
    data = "TRAIN,text one,a\nTEST,text one,a\nTRAIN,text one,b\nTRAIN,text one\n"
    res = parse(data)
    assert len(res.examples) == 1
    assert res.examples[0].labels == ("a",) and res.examples[0].ml_use == "TRAIN"
    assert [f.row for f in res.failures] == [3]
    assert res.failures[0].message == f"{URI} row 3: duplicate of row 1 with a different label"


def test_duplicate_file_content_merges_with_snippet():
    res = parse("gs://bkt/a.txt,a\nTRAIN,text of file a,b\n", multilabel=True)
    assert len(res.examples) == 1
    ex = res.examples[0]
    assert (ex.labels, ex.ml_use, ex.source_uri) == (("a", "b"), "TRAIN", "gs://bkt/a.txt")


def test_empty_rows_skipped_and_row_numbers_count_records():
    data = '\r\nTRAIN,"multi\nline\ntext",a\n   \n,,\nTRAIN,bad,"x y"\n\nTEST,ok,b\r\n'
    res = parse(data)
    assert res.rows == 3
    assert [e.content for e in res.examples] == ["multi\nline\ntext", "ok"]
    # records: 1 blank, 2 multi-line, 3 spaces, 4 commas only, 5 bad, 6 blank, 7 ok
    assert [f.row for f in res.failures] == [5]
    assert res.failures[0].message.startswith(f"{URI} row 5: ")


def test_unterminated_quote_raises_invalid_argument():
    with pytest.raises(InvalidArgument) as info:
        parse('TRAIN,ok,a\nTRAIN,"never closed,a\nTEST,x,b\n')
    assert info.value.message.startswith(f"{URI}: cannot parse CSV at row 2:")


def test_garbage_after_quote_raises_invalid_argument():
    with pytest.raises(InvalidArgument, match="cannot parse CSV at row 1"):
        parse('TRAIN,"quoted"junk,a\n')


def test_bom_stripped():
    res = parse("\ufeffTRAIN,text,a\n")
    assert res.failures == []
    assert res.examples[0].ml_use == "TRAIN" and res.examples[0].content == "text"


def test_empty_input():
    res = parse("")
    assert (res.examples, res.failures, res.rows) == ([], [], 0)


def test_assign_split_keeps_explicit_ml_use():
    for use in ("TRAIN", "VALIDATE", "TEST"):
        assert assign_split("anything", use, test_fraction=1.0) == use


def test_assign_split_deterministic_and_roughly_80_20():
    texts = [f"synthetic example number {i}" for i in range(2000)]
    first = [assign_split(t, "UNASSIGNED") for t in texts]
    assert first == [assign_split(t, "UNASSIGNED") for t in texts]
    assert set(first) == {"TRAIN", "TEST"}
    assert 0.17 <= first.count("TEST") / len(texts) <= 0.23


def test_assign_split_validation_fraction_and_bounds():
    texts = [f"t{i}" for i in range(2000)]
    splits = [assign_split(t, "UNASSIGNED", test_fraction=0.1, validation_fraction=0.1) for t in texts]
    assert 0.07 <= splits.count("VALIDATE") / 2000 <= 0.13
    assert 0.07 <= splits.count("TEST") / 2000 <= 0.13
    assert assign_split("x", "UNASSIGNED", test_fraction=0.0) == "TRAIN"
    assert assign_split("x", "UNASSIGNED", test_fraction=1.0) == "TEST"
    with pytest.raises(InvalidArgument):
        assign_split("x", "UNASSIGNED", test_fraction=0.8, validation_fraction=0.3)


def test_assign_split_stable_across_processes():
    code = (
        "from automill.problems.rows import assign_split;"
        "print(''.join(assign_split(f's{i}', 'UNASSIGNED')[1] for i in range(50)))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    here = "".join(assign_split(f"s{i}", "UNASSIGNED")[1] for i in range(50)) + "\n"
    assert outs == {here}
