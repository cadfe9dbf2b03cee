"""Image classification (MULTICLASS and MULTILABEL) on EfficientNet-Lite0."""

from automill.problems.image_classification.problem import ImageClassification

PROBLEM = ImageClassification()  # found by name through problems/registry.py

__all__ = ["PROBLEM", "ImageClassification"]
