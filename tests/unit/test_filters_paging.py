"""The list-call filter grammar (core/filters.py) and opaque page tokens (core/paging.py)."""

from __future__ import annotations

import base64
import json

import pytest

from automill.core import paging
from automill.core.errors import InvalidArgument
from automill.core.filters import Term, matches, parse_filter

FIELDS = {"image_classification_dataset_metadata", "annotation_spec_id", "display_name", "dataset_id", "done", "x"}


# -- parsing ---------------------------------------------------------------------------------------


def test_empty_and_none_filters_have_no_terms() -> None:
    assert parse_filter(None, FIELDS) == []
    assert parse_filter("", FIELDS) == []
    assert parse_filter("   ", FIELDS) == []


def test_existence_terms() -> None:
    assert parse_filter("image_classification_dataset_metadata:*", FIELDS) == [
        Term("exists", "image_classification_dataset_metadata")
    ]
    assert parse_filter("NOT annotation_spec_id:*", FIELDS) == [Term("exists", "annotation_spec_id", negate=True)]
    assert parse_filter("-x:*", FIELDS) == [Term("exists", "x", negate=True)]
    assert parse_filter("x : *", FIELDS) == [Term("exists", "x")]


def test_equality_with_bare_and_quoted_values() -> None:
    assert parse_filter("dataset_id=5", FIELDS) == [Term("eq", "dataset_id", "5")]
    assert parse_filter("dataset_id!=5", FIELDS) == [Term("ne", "dataset_id", "5")]
    assert parse_filter('display_name="a b"', FIELDS) == [Term("eq", "display_name", "a b")]
    assert parse_filter('display_name!="a b"', FIELDS) == [Term("ne", "display_name", "a b")]
    assert parse_filter('display_name = "a b"', FIELDS) == [Term("eq", "display_name", "a b")]


def test_regex_term() -> None:
    assert parse_filter('regex(display_name, "^A")', FIELDS) == [Term("regex", "display_name", "^A")]
    assert parse_filter('regex( display_name ,"b$" )', FIELDS) == [Term("regex", "display_name", "b$")]


def test_and_and_space_joined_terms() -> None:
    expected = [
        Term("eq", "dataset_id", "5"),
        Term("exists", "annotation_spec_id", negate=True),
        Term("regex", "display_name", "^A"),
    ]
    assert parse_filter('dataset_id=5 AND NOT annotation_spec_id:* AND regex(display_name, "^A")', FIELDS) == expected
    assert parse_filter('dataset_id=5 NOT annotation_spec_id:* regex(display_name, "^A")', FIELDS) == expected
    assert parse_filter('display_name="a b" dataset_id=7', FIELDS) == [
        Term("eq", "display_name", "a b"),
        Term("eq", "dataset_id", "7"),
    ]


@pytest.mark.parametrize("text", ['"done=true"', "'done=true'", '  "done=true"  ', '" done=true "'])
def test_filter_wrapped_in_quotes(text: str) -> None:
    assert parse_filter(text, FIELDS) == [Term("eq", "done", "true")]


@pytest.mark.parametrize(
    "text",
    [
        "display_name",  # no operator
        "display_name=",  # no value
        "=5",  # no field
        "x:* AND AND dataset_id=5",  # doubled AND
        'regex(display_name, "^A"',  # unclosed regex(
        'regex(display_name, "(")',  # bad regular expression
        'display_name="unterminated',  # unterminated quote
        "dataset_id=5 OR dataset_id=6",  # OR is not in the grammar
        "x:* & dataset_id=5",
    ],
)
def test_bad_syntax_raises_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, FIELDS)
    assert info.value.field == "filter"
    assert info.value.code == 3


@pytest.mark.parametrize(
    "text", ["unknown_field=1", "NOT unknown_field:*", 'regex(unknown_field, "a")', "dataset_id=5 AND unknown_field:*"]
)
def test_unknown_field_raises_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, FIELDS)
    assert info.value.field == "filter"
    assert "unknown_field" in info.value.message


# -- matching --------------------------------------------------------------------------------------


def test_existence_matching() -> None:
    has = parse_filter("annotation_spec_id:*", FIELDS)
    has_not = parse_filter("NOT annotation_spec_id:*", FIELDS)
    dash = parse_filter("-annotation_spec_id:*", FIELDS)
    for record, present in [
        ({"annotation_spec_id": "123"}, True),
        ({"annotation_spec_id": ""}, False),
        ({"annotation_spec_id": None}, False),
        ({}, False),
    ]:
        assert matches(has, record) is present
        assert matches(has_not, record) is (not present)
        assert matches(dash, record) is (not present)


def test_existence_uses_exists_callback() -> None:
    terms = parse_filter("image_classification_dataset_metadata:*", FIELDS)
    assert matches(terms, {}, exists=lambda f: f == "image_classification_dataset_metadata")
    assert not matches(terms, {"image_classification_dataset_metadata": "x"}, exists=lambda f: False)


def test_equality_matching() -> None:
    eq = parse_filter('display_name="a b"', FIELDS)
    ne = parse_filter('display_name!="a b"', FIELDS)
    assert matches(eq, {"display_name": "a b"})
    assert not matches(eq, {"display_name": "a"})
    assert not matches(ne, {"display_name": "a b"})
    assert matches(ne, {"display_name": "other"})
    assert matches(parse_filter("dataset_id=5", FIELDS), {"dataset_id": 5})
    assert matches(parse_filter("dataset_id=5", FIELDS), {"dataset_id": "5"})
    assert not matches(parse_filter("dataset_id=5", FIELDS), {"dataset_id": "55"})


def test_done_true_matches_bool() -> None:
    for text in ("done=true", '"done=true"', "done=TRUE", 'done="true"'):
        terms = parse_filter(text, FIELDS)
        assert matches(terms, {"done": True}), text
        assert not matches(terms, {"done": False}), text
    false = parse_filter("done=false", FIELDS)
    assert matches(false, {"done": False})
    assert not matches(false, {"done": True})
    not_done = parse_filter("done!=true", FIELDS)
    assert matches(not_done, {"done": False})
    assert not matches(not_done, {"done": True})


def test_regex_matching() -> None:
    terms = parse_filter('regex(display_name, "^A")', FIELDS)
    assert matches(terms, {"display_name": "Apple"})
    assert not matches(terms, {"display_name": "banana"})
    assert not matches(terms, {"display_name": None})
    assert not matches(terms, {})
    # search, not fullmatch
    assert matches(parse_filter('regex(display_name, "an")', FIELDS), {"display_name": "banana"})


def test_all_terms_must_match() -> None:
    terms = parse_filter('dataset_id=5 AND regex(display_name, "^A")', FIELDS)
    assert matches(terms, {"dataset_id": "5", "display_name": "Ant"})
    assert not matches(terms, {"dataset_id": "6", "display_name": "Ant"})
    assert not matches(terms, {"dataset_id": "5", "display_name": "Bee"})
    assert matches([], {"anything": 1})


# -- paging ----------------------------------------------------------------------------------------


def test_page_size_defaults_and_caps() -> None:
    assert paging.page_size(None) == paging.DEFAULT_PAGE_SIZE == 50
    assert paging.page_size(0) == 50
    assert paging.page_size(-3) == 50
    assert paging.page_size(1) == 1
    assert paging.page_size(7) == 7
    assert paging.page_size(paging.MAX_PAGE_SIZE) == paging.MAX_PAGE_SIZE == 1000
    assert paging.page_size(10**9) == 1000


def test_token_round_trip() -> None:
    for after in (0, 1, 42, 10**12):
        token = paging.encode_token(after, "ops|projects/p/locations/l|done=true")
        assert isinstance(token, str) and "=" not in token
        assert paging.decode_token(token, "ops|projects/p/locations/l|done=true") == after


def test_empty_token_is_first_page() -> None:
    assert paging.decode_token(None, "s") == 0
    assert paging.decode_token("", "s") == 0


def test_token_from_another_scope_raises() -> None:
    token = paging.encode_token(5, "datasets|projects/p/locations/l|")
    with pytest.raises(InvalidArgument) as info:
        paging.decode_token(token, "datasets|projects/p/locations/l|display_name=x")
    assert info.value.field == "page_token"


def _raw_token(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "not-a-token",
        "%%%",
        "YQ",  # "a"
        _raw_token("[1, 2]"),
        _raw_token('"a string"'),
        _raw_token("5"),
        _raw_token('{"a": 1}'),  # no scope
        _raw_token('{"s": "s"}'),  # no position
        _raw_token('{"a": "x", "s": "s"}'),
        _raw_token('{"a": null, "s": "s"}'),
        _raw_token('{"a": NaN, "s": "s"}'),
        _raw_token('{"a": Infinity, "s": "s"}'),
        _raw_token('{"a": 1e400, "s": "s"}'),
        base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode().rstrip("="),
    ],
)
def test_garbage_token_raises_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        paging.decode_token(token, "s")
    assert info.value.field == "page_token"


def test_token_is_urlsafe_base64_json() -> None:
    assert json.loads(base64.urlsafe_b64decode(paging.encode_token(3, "s") + "==")) == {"a": 3, "s": "s"}
