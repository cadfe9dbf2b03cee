"""Image object detection (bounding boxes) on EfficientNet-Lite0 with a CenterNet head."""

from automill.problems.base import register
from automill.problems.image_object_detection.problem import ImageObjectDetection

PROBLEM = register(ImageObjectDetection())

__all__ = ["PROBLEM", "ImageObjectDetection"]
