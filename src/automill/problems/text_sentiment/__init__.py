"""Text sentiment: ordinal values 0..sentiment_max."""

from automill.problems.base import register
from automill.problems.text_sentiment.problem import TextSentiment

PROBLEM = register(TextSentiment())

__all__ = ["PROBLEM", "TextSentiment"]
