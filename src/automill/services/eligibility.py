"""Resumable training: may a model be the base of a new training (``baseModelId``)?

Google's rules (Vision Edge guide, "Resumable training"), applied to every problem type:

- the new model has the base model's problem type and model type;
- the dataset's labels have not changed since the base model was trained;
- the base model was trained within the last 14 days (its ``createTime``: a model exists only once its
  training has ended);
- and, Automill's own: the base model's files are still there.

CreateModel refuses a base model that breaks one with FAILED_PRECONDITION (``services.models``); the
console asks :func:`eligibility` (``GET .../models/ID:resumeEligibility``) to show why a model offers no
"Resume training".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automill.core.ids import parent_of
from automill.services.render import rfc3339
from automill.store.db import utcnow
from automill.store.tables import AnnotationSpecRow, DatasetRow, ModelRow

#: How long after its training a model can be resumed (Google: "trained within the last 14 days").
RESUME_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class Problem:
    """One broken rule: its short code (for a program) and a sentence (for a person)."""

    rule: str
    message: str


@dataclass(frozen=True)
class Eligibility:
    model: str
    model_type: str
    trained: datetime
    problems: list[Problem] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "eligible": self.eligible,
            "modelType": self.model_type,
            "trainTime": rfc3339(self.trained),
            "eligibleUntil": rfc3339(self.trained + RESUME_WINDOW),
        }
        if self.problems:
            out["reasons"] = [{"rule": p.rule, "message": p.message} for p in self.problems]
        return out


def problems(
    s: Session, base: ModelRow, ds: DatasetRow | None, model_type: str | None, now: datetime | None = None
) -> list[Problem]:
    """Every rule that ``base`` breaks as the base of a new ``model_type`` model (None: the base's own) of
    ``ds`` (None: the base's dataset was deleted), in the order CreateModel reports them."""
    out: list[Problem] = []
    if ds is None:
        return [Problem("dataset", f"the dataset {base.dataset_id} of model {base.id} was deleted")]
    if base.problem_type != ds.problem_type:
        out.append(
            Problem(
                "problemType", f"base model {base.id} is a {base.problem_type} model, the dataset is {ds.problem_type}"
            )
        )
    if model_type is not None and base.model_type != model_type:
        out.append(
            Problem(
                "modelType",
                f"base model {base.id} has model type {base.model_type!r}; the new model asks for {model_type!r}: "
                "they must be the same",
            )
        )
    now = now or utcnow()
    if now - base.create_time > RESUME_WINDOW:
        days = (now - base.create_time).days
        out.append(
            Problem(
                "age",
                f"base model {base.id} was trained on {base.create_time:%Y-%m-%d}, {days} days ago: only models "
                f"trained within the last {RESUME_WINDOW.days} days can be resumed; train a new model instead",
            )
        )
    try:
        base_meta = json.loads((Path(base.artifact_dir) / "model.json").read_text())
    except (OSError, ValueError):  # missing or unreadable; the message must not name the server's folders
        out.append(Problem("files", f"base model {base.id} has no model files"))
        return out
    specs = {
        r.id: r.display_name
        for r in s.execute(select(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == ds.id)).scalars()
    }
    if sorted(base_meta.get("annotation_spec_ids", [])) != sorted(specs):
        out.append(
            Problem(
                "labels",
                f"the labels of dataset {ds.id} changed since base model {base.id} was trained "
                f"(base: {sorted(base_meta.get('display_names', []))}, now: {sorted(specs.values())})",
            )
        )
    return out


def eligibility(s: Session, base: ModelRow, now: datetime | None = None) -> Eligibility:
    """Whether ``base`` can be resumed on its own dataset with its own model type, and if not, why."""
    ds = s.get(DatasetRow, base.dataset_id)
    if ds is not None and (ds.project, ds.location) != (base.project, base.location):
        ds = None
    return Eligibility(
        model=f"{parent_of(base.project, base.location)}/models/{base.id}",
        model_type=base.model_type,
        trained=base.create_time,
        problems=problems(s, base, ds, None, now),
    )
