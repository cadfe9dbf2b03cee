"""The public surface of the engine (what notebooks import)."""

import automill.engine as engine


def test_engine_exports() -> None:
    assert sorted(engine.__all__) == sorted(
        [
            "BUDGET_REACHED",
            "DEFAULT_TEXT_MODEL_TYPE",
            "Deadline",
            "MODEL_CONVERGED",
            "PRESETS",
            "TextEnsemble",
            "TextFitResult",
            "fit_text",
        ]
    )
    for name in engine.__all__:
        assert getattr(engine, name) is not None
