"""Image object detection (bounding boxes) on EfficientNet-Lite0 with a CenterNet head."""

from automill.problems.image_object_detection.problem import ImageObjectDetection

PROBLEM = ImageObjectDetection()  # found by name through problems/registry.py

__all__ = ["PROBLEM", "ImageObjectDetection"]
