"""The problem types by name: a plain table of the built-in ones, imported when first asked for.

The registry never imports a problem package at module level and no problem package imports it:
a type's package exports ``PROBLEM`` and the table below names it by dotted path.
"""

from __future__ import annotations

import importlib

from automill.core.errors import InvalidArgument, Unimplemented
from automill.problems.base import Problem

#: Every dataset metadata key of the API -> problem type name, implemented or not.
DATASET_KEYS: dict[str, str] = {
    "textClassificationDatasetMetadata": "text_classification",
    "textSentimentDatasetMetadata": "text_sentiment",
    "textExtractionDatasetMetadata": "text_extraction",
    "imageClassificationDatasetMetadata": "image_classification",
    "imageObjectDetectionDatasetMetadata": "image_object_detection",
    "translationDatasetMetadata": "translation",
}
MODEL_KEYS: dict[str, str] = {k.replace("DatasetMetadata", "ModelMetadata"): v for k, v in DATASET_KEYS.items()}

#: Built-in problem type name -> the package whose ``PROBLEM`` implements it.
BUILTIN: dict[str, str] = {
    "text_classification": "automill.problems.text_classification",
    "text_sentiment": "automill.problems.text_sentiment",
    "text_extraction": "automill.problems.text_extraction",
    "image_classification": "automill.problems.image_classification",
    "image_object_detection": "automill.problems.image_object_detection",
}

_REGISTRY: dict[str, Problem] = {}


def register(problem: Problem) -> Problem:
    """Add a problem type that is not built in (a built-in one is found through :data:`BUILTIN`)."""
    if problem.name in _REGISTRY and _REGISTRY[problem.name] is not problem:
        raise ValueError(f"problem type {problem.name!r} is already registered")
    _REGISTRY[problem.name] = problem
    return problem


def get_problem(name: str) -> Problem:
    problem = _REGISTRY.get(name)
    if problem is None and name in BUILTIN:
        problem = register(importlib.import_module(BUILTIN[name]).PROBLEM)
    if problem is None:
        raise Unimplemented(f"problem type {name} is not supported by this server yet")
    return problem


def problem_for_dataset_key(key: str) -> str:
    try:
        return DATASET_KEYS[key]
    except KeyError:
        raise InvalidArgument(f"unknown dataset metadata {key!r}") from None
