"""Job handlers, registered by name with the job registry when this package is imported."""

from automill.services.handlers import batch_predict, data, deploy, export_model, models

__all__ = ["batch_predict", "data", "deploy", "export_model", "models"]
