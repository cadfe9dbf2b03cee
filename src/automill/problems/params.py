"""Prediction ``params`` (PredictRequest / BatchPredictRequest): the rules, in one place.

A problem plug-in names the params it reads in ``predict_params``; its ``predict`` parses them with
the functions here, and :func:`check_predict_params` applies the same functions up front, so online
predict, batch predict (at request time, before an operation exists) and the batch worker agree.
Keys a problem does not read are left alone, as Google's API does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from automill.core.errors import InvalidArgument


def score_threshold(params: Mapping[str, str]) -> float:
    """``score_threshold``: a number in 0..1 (absent or empty -> 0.0; callers may supply their default)."""
    raw = params.get("score_threshold")
    if raw in (None, ""):
        return 0.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"params.score_threshold must be a number in 0..1, got {raw!r}", field="params.score_threshold"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"params.score_threshold must be in 0..1, got {value}", field="params.score_threshold")
    return value


def int_param(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(f"params.{key} must be an integer, got {raw!r}", field=f"params.{key}") from None
    if not low <= value <= high:
        raise InvalidArgument(f"params.{key} must be in {low}..{high}, got {value}", field=f"params.{key}")
    return value


def max_bounding_box_count(params: Mapping[str, str]) -> int:
    return int_param(params, "max_bounding_box_count", 100, 1, 500)


#: param name -> its rule (raises InvalidArgument naming ``params.<name>``).
RULES: dict[str, Callable[[Mapping[str, str]], object]] = {
    "score_threshold": score_threshold,
    "max_bounding_box_count": max_bounding_box_count,
}


def check_predict_params(problem: Any, params: Mapping[str, str]) -> None:
    """Apply the rules of the params ``problem`` reads (its ``predict_params``) to ``params``."""
    for key in getattr(problem, "predict_params", ()):
        if key in params:
            RULES[key](params)
