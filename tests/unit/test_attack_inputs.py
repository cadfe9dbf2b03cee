"""Hostile inputs at the service boundary: list filters with catastrophic or oversized regular
expressions, names with a trailing newline or huge project ids, and batch predict params that only
the worker used to check. Each test failed on the code before these fixes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from automill.core import filters
from automill.core.errors import InvalidArgument
from automill.core.ids import split_name, split_parent
from automill.services import validation
from automill.services.container import Services
from automill.services.predictions import check_params
from automill.settings import Settings
from automill.store.db import new_etag, utcnow
from automill.store.tables import ModelRow, OperationRow

DATASET_FIELDS = {"display_name", "dataset_id"}
OPERATION_FIELDS = {"done", "worksOn", "works_on"}


# -- filters --------------------------------------------------------------------------------------
def test_catastrophic_regex_is_linear_time() -> None:
    """``^(a+)+$`` on 29 a's and an X backtracks for minutes in Python's re; RE2 answers at once.
    Timed in a subprocess, killed after 20 s, so a backtracking engine cannot hang the test run."""
    code = textwrap.dedent("""
        import time
        from automill.core import filters
        record = {"display_name": "a" * 29 + "X", "worksOn": "projects/p/locations/l/models/" + "a" * 29 + "X"}
        start = time.monotonic()
        for text, fields in ((r'regex(display_name, "^(a+)+$")', {"display_name"}),
                             (r'regex(worksOn, "^(a+)+$")', {"worksOn"}),
                             (r'regex(display_name, "(a|aa)+$")', {"display_name"})):
            assert not filters.matches(filters.parse_filter(text, fields), record)
        print(time.monotonic() - start)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("a catastrophic regex filter ran for over 20 s")
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 0.5
    # Ordinary RE2 patterns still work.
    assert filters.matches(
        filters.parse_filter(r'regex(display_name, "^sms_\d+$")', DATASET_FIELDS), {"display_name": "sms_12"}
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "(" * 2000 + "a" + ")" * 2000,  # Python's re: RecursionError (500)
        "a{99999999999}",  # Python's re: OverflowError (500); RE2 would read it as literal text
        "a{2,99999999999}",
        "a" * 5000,  # over the pattern length cap
        "[" + "".join(chr(0x10000 + 997 * i) for i in range(40)) + "]{1000}",  # 48 chars, RE2 program over max_mem
        "(?=a)b",  # lookahead: not RE2
        r"(a)\1",  # backreference: not RE2
    ],
)
def test_bad_regex_is_invalid_argument_on_filter(pattern: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        filters.parse_filter(f'regex(display_name, "{pattern}")', DATASET_FIELDS)
    assert info.value.field == "filter"
    assert len(info.value.message) < 500


def test_filter_length_is_capped() -> None:
    text = " AND ".join(f"dataset_id={i}" for i in range(1000))  # > 4000 characters
    with pytest.raises(InvalidArgument) as info:
        filters.parse_filter(text, DATASET_FIELDS)
    assert info.value.field == "filter" and "4000" in info.value.message
    # Braces in character classes and escapes are not counts; a normal count is fine.
    filters.parse_filter(r'regex(display_name, "[{99999999}]\{99999999} x{3,1000}")', DATASET_FIELDS)


# -- names and ids --------------------------------------------------------------------------------
def test_trailing_newline_is_refused() -> None:
    for call in (
        lambda: validation.dataset_display_name("name\n"),
        lambda: validation.model_display_name("name\n"),
        lambda: validation.labels({"env\n": "prod"}, "dataset.labels"),
        lambda: validation.labels({"env": "prod\n"}, "dataset.labels"),
    ):
        with pytest.raises(InvalidArgument):
            call()
    assert validation.dataset_display_name("name_1") == "name_1"
    assert validation.labels({"env": "prod", "team": ""}, "dataset.labels") == {"env": "prod", "team": ""}


def test_project_location_and_id_are_checked() -> None:
    huge = "p" * 10_000
    with pytest.raises(InvalidArgument) as info:
        split_parent(f"projects/{huge}/locations/us-central1")
    assert info.value.field == "parent" and len(info.value.message) < 300
    with pytest.raises(InvalidArgument) as info:
        split_name(f"projects/{huge}/locations/us-central1/datasets/TCN1", "datasets")
    assert info.value.field == "name" and len(info.value.message) < 300
    for parent in (
        "projects/p/locations/us-central1\n",
        "projects/-p/locations/l",
        "projects/p q/locations/l",
        "projects/p/locations/US",
        f"projects/p/locations/{'l' * 64}",
        f"projects/{'p' * 64}/locations/l",
    ):
        with pytest.raises(InvalidArgument) as info:
            split_parent(parent)
        assert info.value.field == "parent", parent
    for name in (
        "projects/p/locations/l/models/TCN1\n",
        f"projects/p/locations/l/models/{'1' * 129}",
        "projects/p/locations/l/models/a.b",
        "projects/p/locations/L/models/TCN1",
    ):
        with pytest.raises(InvalidArgument) as info:
            split_name(name, "models")
        assert info.value.field == "name", name
    # What the tests, CLI and docs use stays valid; so do project numbers and domain-like ids.
    for project in ("curl", "local", "my-project", "e2e", "p", "P", "123456789012", "example.com_proj", "p" * 63):
        assert split_parent(f"projects/{project}/locations/us-central1") == (project, "us-central1")
    assert split_name("projects/p/locations/l/operations/TCN1000000000000000042", "operations") == (
        "p",
        "l",
        "TCN1000000000000000042",
    )


# -- batch predict params -------------------------------------------------------------------------
def test_params_rules_are_shared() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_params({"score_threshold": "abc"}, "text_classification")
    assert info.value.field == "params.score_threshold"
    with pytest.raises(InvalidArgument) as info:
        check_params({"max_bounding_box_count": "0"}, "image_object_detection")
    assert info.value.field == "params.max_bounding_box_count"
    for problem_type in ("image_classification", "text_extraction", "image_object_detection"):
        with pytest.raises(InvalidArgument):
            check_params({"score_threshold": "1.5"}, problem_type)
    # Sentiment's predict reads no params, as before; valid values pass and stay strings.
    assert check_params({"score_threshold": "abc"}, "text_sentiment") == {"score_threshold": "abc"}
    assert check_params({"score_threshold": "0.25"}, "text_classification") == {"score_threshold": "0.25"}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    sv = Services(Settings(data_dir=tmp_path))
    sv.db.migrate()
    now = utcnow()
    with sv.db.tx() as s:
        s.add(
            ModelRow(
                id="TCN7",
                project="p",
                location="us-central1",
                display_name="m",
                dataset_id="TCN1",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag=new_etag("TCN7", now),
                deployment_state="UNDEPLOYED",
                create_time=now,
                update_time=now,
                artifact_dir=str(tmp_path / "no-model"),
                seq=7,
            )
        )
    yield sv
    sv.db.dispose()


def test_batch_predict_checks_params_before_creating_the_operation(services: Services) -> None:
    name = "projects/p/locations/us-central1/models/TCN7"
    with pytest.raises(InvalidArgument) as info:
        services.predictions.batch_predict(
            name,
            {"gcsSource": {"inputUris": ["gs://inb/rows.csv"]}},
            {"gcsDestination": {"outputUriPrefix": "gs://out/"}},
            {"score_threshold": "abc"},
        )
    assert info.value.field == "params.score_threshold"
    with services.db.tx() as s:
        assert s.execute(select(func.count()).select_from(OperationRow)).scalar_one() == 0
