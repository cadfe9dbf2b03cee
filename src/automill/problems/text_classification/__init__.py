"""Text classification (MULTICLASS and MULTILABEL)."""

from automill.problems.text_classification.problem import TextClassification

PROBLEM = TextClassification()  # found by name through problems/registry.py

__all__ = ["PROBLEM", "TextClassification"]
