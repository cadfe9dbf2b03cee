from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from automill.core.errors import InvalidArgument, NotFound
from automill.problems.rows import RowFailure
from automill.problems.text_extraction.rows import (
    ExtractionExample,
    Span,
    parse_index_csv,
    parse_jsonl,
    split_extraction,
)

URI = "gs://bkt/train.jsonl"
CONLL = Path("/work/shared/datasets/conll2003/validation.jsonl")


def doc(content, *anns, camel=False):
    """One JSONL line; anns are (label, start, end)."""
    if camel:
        return json.dumps(
            {
                "textSnippet": {"content": content},
                "annotations": [
                    {"displayName": label, "textExtraction": {"textSegment": {"startOffset": s, "endOffset": e}}}
                    for label, s, e in anns
                ],
            }
        )
    return json.dumps(
        {
            "text_snippet": {"content": content},
            "annotations": [
                {"display_name": label, "text_extraction": {"text_segment": {"start_offset": s, "end_offset": e}}}
                for label, s, e in anns
            ],
        }
    )


def parse(*lines, **kw):
    return parse_jsonl("\n".join(lines), uri=URI, ml_use=kw.pop("ml_use", "TRAIN"), **kw)


def one_failure(*lines, **kw) -> RowFailure:
    result = parse(*lines, **kw)
    assert len(result.failures) == 1, result.failures
    return result.failures[0]


def test_snake_case_keys():
    r = parse(doc("Alice met Bob", ("PER", 0, 5), ("PER", 10, 13)))
    assert r.failures == [] and r.rows == 1
    assert r.examples == [ExtractionExample("Alice met Bob", "TRAIN", [Span("PER", 0, 5), Span("PER", 10, 13)], URI)]


def test_camel_case_keys_and_string_offsets():
    r = parse(doc("Alice met Bob", ("PER", "10", "13"), ("PER", "0", 5), camel=True))
    assert r.failures == []
    assert r.examples[0].spans == [Span("PER", 0, 5), Span("PER", 10, 13)]  # sorted


def test_missing_start_offset_is_zero_as_in_proto3_json():
    line = json.dumps(
        {
            "textSnippet": {"content": "Paris"},
            "annotations": [{"displayName": "LOC", "textExtraction": {"textSegment": {"endOffset": "5"}}}],
        }
    )
    assert parse(line).examples[0].spans == [Span("LOC", 0, 5)]


def test_non_ascii_offsets_are_str_indices():
    r = parse(doc("Zoë and 北京 here", ("PER", 0, 3), ("LOC", 8, 10)))
    ex = r.examples[0]
    assert [ex.content[s.start : s.end] for s in ex.spans] == ["Zoë", "北京"]


def test_documents_without_annotations_are_kept():
    r = parse(doc("nothing here"), json.dumps({"text_snippet": {"content": "no key"}}))
    assert r.failures == [] and r.rows == 2
    assert [ex.spans for ex in r.examples] == [[], []]


def test_blank_lines_keep_their_number_and_are_skipped():
    r = parse(doc("a b", ("X", 0, 1)), "", "  ", "{bad", "")
    assert r.rows == 2 and len(r.examples) == 1
    assert r.failures[0].row == 4 and r.failures[0].message.startswith(f"{URI} line 4: ")


@pytest.mark.parametrize(
    "line, needle",
    [
        ('{"text_snippet": {"content": "x"', "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"annotations": []}', "content is missing"),
        ('{"text_snippet": {"content": "   "}}', "empty"),
        ('{"text_snippet": {"content": 5}}', "content is missing"),
        (doc("abc", ("bad-label", 0, 1)), "label 'bad-label' is invalid"),
        (doc("abc", ("A" * 33, 0, 1)), "is invalid"),
        (doc("abc", ("X", 0.5, 2)), "start_offset 0.5 is not an integer"),
        (doc("abc", ("X", 0, "two")), "end_offset 'two' is not an integer"),
        (doc("abc", ("X", 0, True)), "not an integer"),
        (doc("abc", ("X", -1, 2)), "start_offset -1 is negative"),
        (doc("abc", ("X", "-1", 2)), "negative"),
        (doc("abc", ("X", 2, 2)), "start_offset 2 must be below end_offset 2"),
        (doc("abc", ("X", 2, 1)), "must be below"),
        (doc("abc", ("X", 1, 4)), "end_offset 4 is past the content (3 characters)"),
        (
            json.dumps(
                {
                    "text_snippet": {"content": "a"},
                    "annotations": [{"display_name": "X", "text_extraction": {"text_segment": {"start_offset": 0}}}],
                }
            ),
            "end_offset is missing",
        ),
        (
            json.dumps(
                {
                    "text_snippet": {"content": "a"},
                    "annotations": [{"display_name": "X", "text_classification": {"score": 1}}],
                }
            ),
            "has no text_extraction.text_segment",
        ),
        (json.dumps({"text_snippet": {"content": "a"}, "annotations": ["X"]}), "not an object"),
        (json.dumps({"text_snippet": {"content": "a"}, "annotations": {}}), "not a list"),
        (
            '{"document": {"input_config": {"gcs_source": {"input_uris": ["gs://bkt/x.pdf"]}}}}',
            "PDF documents are not supported here",
        ),
    ],
)
def test_each_failure_kind_names_file_and_line(line, needle):
    good = doc("fine", ("X", 0, 4))
    r = parse(good, good, line, good)
    assert r.rows == 4 and len(r.examples) == 3
    (f,) = r.failures
    assert (f.uri, f.row) == (URI, 3)
    assert f.message.startswith(f"{URI} line 3: ")
    assert needle in f.message


def test_overlapping_spans_fail_and_say_which():
    f = one_failure(doc("New York City", ("LOC", 0, 8), ("ORG", 4, 13)))
    assert "LOC [0, 8) and ORG [4, 13) overlap" in f.message
    # Same offsets, different type is an overlap; nested spans too.
    assert "overlap" in one_failure(doc("abcdef", ("A", 0, 3), ("B", 0, 3))).message
    f = one_failure(doc("abcdefghij", ("A", 0, 10), ("B", 2, 3), ("C", 5, 6)))
    assert "A [0, 10) and B [2, 3) overlap" in f.message
    # Touching spans share no character.
    assert parse(doc("abcdef", ("A", 0, 3), ("B", 3, 6))).failures == []


def test_exact_duplicate_spans_are_merged():
    r = parse(doc("abcdef", ("A", 0, 3), ("B", 3, 6), ("A", "0", 3)))
    assert r.failures == [] and r.examples[0].spans == [Span("A", 0, 3), Span("B", 3, 6)]


def test_content_not_nfc_fails():
    f = one_failure(doc("caf" + "e\u0301", ("X", 0, 3)))
    assert "NFC" in f.message and f.row == 1
    assert parse(doc("caf\u00e9", ("X", 0, 3))).failures == []


def test_max_chars_limit():
    ok = "a" * 30_000
    assert parse(doc(ok, ("X", 0, 1))).failures == []
    f = one_failure(doc(ok + "b", ("X", 0, 1)))
    assert "too long: 30001 characters (at most 30000)" in f.message
    assert one_failure(doc("abcdef"), max_chars=5).row == 1


# --- the index CSV ---------------------------------------------------------------------

FILES = {
    "gs://bkt/train.jsonl": "\n".join([doc("Alice runs", ("PER", 0, 5)), doc("nobody")]) + "\n",
    "gs://bkt/test.jsonl": doc("Bob", ("PER", 0, 3)) + "\n" + "{oops\n",
    "gs://bkt/empty.jsonl": "\n",
}


def read_text(path: str) -> str:
    try:
        return FILES[path]
    except KeyError:
        raise NotFound(f"{path} not found") from None


def index(data: str):
    return parse_index_csv(data, uri="gs://bkt/index.csv", read_text=read_text)


def test_index_csv_reads_each_file_with_its_ml_use():
    r = index("TRAIN,gs://bkt/train.jsonl\ntest , gs://bkt/test.jsonl\n\n")
    assert [(e.content, e.ml_use, e.source_uri) for e in r.examples] == [
        ("Alice runs", "TRAIN", "gs://bkt/train.jsonl"),
        ("nobody", "TRAIN", "gs://bkt/train.jsonl"),
        ("Bob", "TEST", "gs://bkt/test.jsonl"),
    ]
    assert r.rows == 4  # JSONL lines seen
    (f,) = r.failures
    assert (f.uri, f.row) == ("gs://bkt/test.jsonl", 2)
    assert f.message.startswith("gs://bkt/test.jsonl line 2: invalid JSON")


def test_index_row_without_ml_use_is_unassigned():
    r = index("\ufeffgs://bkt/train.jsonl\n")
    assert r.failures == [] and {e.ml_use for e in r.examples} == {"UNASSIGNED"}


@pytest.mark.parametrize(
    "row, needle",
    [
        ("TRAIN,gs://bkt/missing.jsonl", "gs://bkt/missing.jsonl not found"),
        ("TRAIN,gs://bkt/empty.jsonl", "gs://bkt/empty.jsonl is empty"),
        ("TRIAN,gs://bkt/train.jsonl", 'unknown ML_USE "TRIAN"'),
        ("TRAIN,b/train.jsonl", "found 0 gs:// paths"),
        ("TRAIN", "found 0 gs:// paths"),
        ("gs://bkt/train.jsonl,gs://bkt/test.jsonl", "found 2 gs:// paths"),
        ("TRAIN,gs://bkt/train.jsonl,extra", "got 3 cells"),
    ],
)
def test_bad_index_rows_fail_with_their_row(row, needle):
    r = index(f"VALIDATE,gs://bkt/train.jsonl\n{row}\n")
    assert len(r.examples) == 2 and r.rows == 3
    (f,) = r.failures
    assert (f.uri, f.row) == ("gs://bkt/index.csv", 2)
    assert f.message.startswith("gs://bkt/index.csv row 2: ") and needle in f.message


def test_unparseable_csv_raises():
    with pytest.raises(InvalidArgument) as err:
        index('TRAIN,"gs://bkt/train.jsonl\n')
    assert "gs://bkt/index.csv" in err.value.message


# --- split -----------------------------------------------------------------------------


def test_split_proportions_and_determinism():
    texts = [f"synthetic document number {i} about things" for i in range(2000)]
    splits = [split_extraction(t, "UNASSIGNED") for t in texts]
    share = {k: v / len(texts) for k, v in Counter(splits).items()}
    assert share["TEST"] == pytest.approx(0.20, abs=0.03)
    assert share["TRAIN"] == pytest.approx(0.56, abs=0.03)
    assert share["VALIDATE"] == pytest.approx(0.24, abs=0.03)
    assert splits == [split_extraction(t, "UNASSIGNED") for t in texts]
    assert split_extraction(texts[0], "unassigned") == splits[0]


def test_split_keeps_explicit_ml_use():
    for use in ("TRAIN", "VALIDATE", "TEST"):
        assert {split_extraction(f"t{i}", use) for i in range(50)} == {use}


# --- the real CoNLL-2003 validation file -----------------------------------------------


@pytest.mark.skipif(not CONLL.exists(), reason="shared dataset not present")
def test_conll2003_validation_parses_cleanly():
    r = parse_jsonl(CONLL.read_text(encoding="utf-8"), uri="gs://xbk/validation.jsonl", ml_use="VALIDATE")
    assert r.failures == []
    assert len(r.examples) == r.rows == 3250
    spans = [s for ex in r.examples for s in ex.spans]
    assert len(spans) == 5942
    assert Counter(s.label for s in spans) == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
    for ex in r.examples:
        for s in ex.spans:
            assert ex.content[s.start : s.end].strip()


def test_pdf_page_limit() -> None:
    """A PDF bomb of many small pages is refused by its page count, before its text is read."""
    from fpdf import FPDF

    from automill.problems.text_extraction.pdf import MAX_PDF_PAGES, extract_document

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for i in range(MAX_PDF_PAGES + 1):
        pdf.add_page()
        pdf.cell(text=f"page {i}")
    with pytest.raises(InvalidArgument, match=f"{MAX_PDF_PAGES + 1} pages, over the limit"):
        extract_document(bytes(pdf.output()), "gs://bkt/bomb.pdf")
