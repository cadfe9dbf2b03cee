"""Text entity extraction (AutoML Natural Language ``TextExtractionDatasetMetadata``)."""

from automill.problems.base import register
from automill.problems.text_extraction.problem import TextExtraction

PROBLEM = register(TextExtraction())

__all__ = ["PROBLEM", "TextExtraction"]
