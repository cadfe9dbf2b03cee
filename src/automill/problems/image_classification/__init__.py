"""Image classification (MULTICLASS and MULTILABEL) on EfficientNet-Lite0."""

from automill.problems.base import register
from automill.problems.image_classification.problem import ImageClassification

PROBLEM = register(ImageClassification())

__all__ = ["PROBLEM", "ImageClassification"]
