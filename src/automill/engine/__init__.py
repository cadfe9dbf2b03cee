"""The AutoML engine, usable from Python without the server.

from automill.engine import Deadline, fit_text
result = fit_text("multiclass", train_texts, Y_train, valid_texts, Y_valid,
                  deadline=Deadline(300), model_type="mobile-versatile-1")
result.model.predict_proba(["some text"]), result.stop_reason, result.trials
"""

from automill.core.deadline import Deadline
from automill.engine.model_types import DEFAULT_TEXT_MODEL_TYPE, PRESETS
from automill.engine.text import BUDGET_REACHED, MODEL_CONVERGED, TextEnsemble, TextFitResult, fit_text

__all__ = [
    "BUDGET_REACHED",
    "DEFAULT_TEXT_MODEL_TYPE",
    "MODEL_CONVERGED",
    "PRESETS",
    "Deadline",
    "TextEnsemble",
    "TextFitResult",
    "fit_text",
]
