"""Text entity extraction (AutoML Natural Language ``TextExtractionDatasetMetadata``)."""
