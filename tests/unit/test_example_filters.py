"""The console's ListExamples filter (services.examples): hostile values answer INVALID_ARGUMENT on ``filter``."""

from __future__ import annotations

import pytest

from automill.core.errors import InvalidArgument
from automill.services.examples import _terms


def test_the_filter_keeps_ml_use_and_spec() -> None:
    assert _terms("") == (None, None)
    assert _terms("mlUse=train AND annotationSpecId=123") == ({"TRAIN"}, "123")


@pytest.mark.parametrize(
    "filter_",
    [
        "mlUse=EVERYTHING",
        "NOT mlUse=TRAIN",
        'regex(mlUse, "^(a+)+$")',
        "displayName=x",
        "mlUse=TRAIN AND (",
        "x" * 100_000,
        "mlUse=\x00",
    ],
)
def test_hostile_filters_name_the_field(filter_: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _terms(filter_)
    assert err.value.field == "filter"
