"""Text sentiment: ordinal values 0..sentiment_max."""

from automill.problems.text_sentiment.problem import TextSentiment

PROBLEM = TextSentiment()  # found by name through problems/registry.py

__all__ = ["PROBLEM", "TextSentiment"]
