"""Model types for text problems (an Automill extension using the edge model type names).

Each type is a preset: which learner families the search may use, in which order, and how many
members the final ensemble may have. Presets are data; the scheduler reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from automill.core.errors import InvalidArgument


@dataclass(frozen=True)
class Preset:
    families: tuple[str, ...]
    max_members: int
    #: Per family, the configurations to try, by index into the family's SEARCH_SPACE (None = all).
    space: dict[str, tuple[int, ...] | None]


DEFAULT_TEXT_MODEL_TYPE = "mobile-versatile-1"

PRESETS: dict[str, Preset] = {
    # Small and fast: word n-gram TF-IDF + linear only, a single model.
    "mobile-low-latency-1": Preset(("tfidf_linear",), 1, {"tfidf_linear": (0, 3)}),
    # Default: TF-IDF word+char linear models and a head on MiniLM embeddings, ensembled.
    "mobile-versatile-1": Preset(
        ("tfidf_linear", "minilm_linear"), 4, {"tfidf_linear": (0, 1, 2, 3, 4), "minilm_linear": None}
    ),
    # Most accurate the budget allows: the default's strongest cheap models (so its ensemble can
    # only gain), then the rest of the budget for fine-tuning MiniLM (the whole encoder first, then
    # all but its lowest two layers if time is left), all ensembled.
    "mobile-high-accuracy-1": Preset(
        ("tfidf_linear", "minilm_linear", "minilm_finetune"),
        6,
        {"tfidf_linear": (0, 1, 4, 5), "minilm_linear": None, "minilm_finetune": (1, 0)},
    ),
}
ALIASES = {"": DEFAULT_TEXT_MODEL_TYPE, "cloud": "mobile-high-accuracy-1"}


def text_preset(model_type: str) -> tuple[str, Preset]:
    name = ALIASES.get(model_type, model_type)
    if name not in PRESETS:
        raise InvalidArgument(
            f"modelType {model_type!r} is not a text model type; use one of {sorted(PRESETS)}", field="model.model_type"
        )
    return name, PRESETS[name]
