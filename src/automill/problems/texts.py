"""What label problems on text share: text classification and sentiment.

Their import rows are the text CSV rows (problems/rows.py), their models are fitted by
``engine.text.fit_text`` (the kind, ``multiclass``, ``multilabel`` or ``ordinal``, is the type's)
and stored as ``model.pkl`` (the fit result) beside ``model.json``; a base model resumes training.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition
from automill.engine.model_types import text_preset
from automill.engine.progress import two_args
from automill.engine.text import TextFitResult, fit_text
from automill.problems.artifacts import read_pickle, write_pickle
from automill.problems.base import StoredExample, TrainOutcome
from automill.problems.classification import Classification, label_matrix
from automill.problems.rows import LabelledExample, ParseResult, assign_split, parse_import_csv

#: The longest text an online or batch prediction of a text model takes.
MAX_PREDICT_CHARS = 60_000
ARTIFACT_VERSION = 2


class TextLabels(Classification):
    """A label problem on text; a subclass names the type and may narrow rows, specs and evaluation."""

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[[str], bytes] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> ParseResult[LabelledExample]:
        return parse_import_csv(
            data, uri=uri, read_text=read_text, multilabel=self.kind(dataset_meta) == "multilabel", on_rows=on_rows
        )

    # -- training -----------------------------------------------------------------------------------
    def train(
        self,
        examples: Sequence[StoredExample],
        specs: Sequence[tuple[str, str]],
        dataset_meta: dict[str, Any],
        *,
        deadline: Deadline,
        out_dir: Path,
        progress: Callable[[float], None],
        model_type: str = "",
        base_dir: Path | None = None,
        checkpoint_dir: Path | None = None,
    ) -> TrainOutcome:
        report = two_args(progress)
        kind = self.kind(dataset_meta)
        specs = self.order_specs(specs, dataset_meta)
        spec_ids = [s for s, _ in specs]
        names = [n for _, n in specs]
        index = {s: i for i, s in enumerate(spec_ids)}
        parts: dict[str, list[StoredExample]] = {"TRAIN": [], "VALIDATE": [], "TEST": []}
        for e in examples:
            if e.annotations:
                parts[assign_split(e.content, e.ml_use)].append(e)
        train, valid, test = parts["TRAIN"], parts["VALIDATE"], parts["TEST"]
        if len(train) < 2 or not test:
            raise FailedPrecondition(
                f"the dataset needs labelled TRAIN and TEST examples to train a model; it has {len(train)} TRAIN, "
                f"{len(valid)} VALIDATE and {len(test)} TEST (UNASSIGNED rows are split 80/20 into TRAIN/TEST)"
            )
        Y_train = label_matrix(train, index)
        self.check_trainable(Y_train, specs, dataset_meta)
        base = self._load_base(base_dir, spec_ids, model_type) if base_dir else None
        result = fit_text(
            kind,
            [e.content for e in train],
            Y_train,
            [e.content for e in valid] or None,
            label_matrix(valid, index) if valid else None,
            deadline=deadline,
            model_type=model_type,
            progress=report,
            base=base,
            checkpoint_dir=checkpoint_dir,
        )
        Y_test = label_matrix(test, index)
        report(91, f"evaluating the model on {len(test):,} TEST texts")
        scores = result.model.predict_proba([e.content for e in test])
        evaluations = self.evaluate(Y_test, scores, spec_ids, names, dataset_meta)
        report(95, "writing the model files")
        out_dir.mkdir(parents=True, exist_ok=True)
        write_pickle(out_dir / "model.pkl", result)
        (out_dir / "model.json").write_text(
            json.dumps(
                {
                    "version": ARTIFACT_VERSION,
                    "problem": self.name,
                    "kind": kind,
                    "model_type": result.model_type,
                    "annotation_spec_ids": spec_ids,
                    "display_names": names,
                    "members": result.model.describe(),
                    "thresholds": None if result.model.thresholds is None else result.model.thresholds.tolist(),
                    "trials": result.trials,
                },
                default=str,
            )
        )
        report(99.0, None)
        return TrainOutcome(
            evaluations=evaluations,
            stop_reason=result.stop_reason,
            info={"model_type": result.model_type, "members": result.model.describe()},
        )

    def _load_base(self, base_dir: Path, spec_ids: list[str], model_type: str) -> TextFitResult:
        meta = json.loads((base_dir / "model.json").read_text())
        if meta.get("annotation_spec_ids") != spec_ids:
            raise FailedPrecondition(
                "the base model's labels differ from the dataset's current labels: "
                "train a new model without baseModelId"
            )
        if meta.get("model_type") != text_preset(model_type)[0]:
            raise FailedPrecondition(
                f"the base model has model type {meta.get('model_type')!r}, not {text_preset(model_type)[0]!r}"
            )
        base: TextFitResult = read_pickle(base_dir / "model.pkl")
        return base

    # -- serving ------------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        meta = json.loads((model_dir / "model.json").read_text())
        return {"model": read_pickle(model_dir / "model.pkl").model, **meta}
