"""Text entity extraction (AutoML Natural Language ``TextExtractionDatasetMetadata``)."""

from automill.problems.text_extraction.problem import TextExtraction

PROBLEM = TextExtraction()  # found by name through problems/registry.py

__all__ = ["PROBLEM", "TextExtraction"]
