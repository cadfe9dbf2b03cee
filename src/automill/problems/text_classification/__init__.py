"""Text classification (MULTICLASS and MULTILABEL)."""

from automill.problems.base import register
from automill.problems.text_classification.problem import TextClassification

PROBLEM = register(TextClassification())

__all__ = ["PROBLEM", "TextClassification"]
