"""The CreateModel job: train within the budget, evaluate, and store model + evaluations at once."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from automill.core.deadline import (
    BudgetExhausted,
    Deadline,
    milli_node_hours_to_seconds,
    seconds_to_milli_node_hours,
)
from automill.core.errors import DeadlineExceeded, FailedPrecondition
from automill.core.ids import make_id
from automill.engine.progress import BudgetProgress
from automill.jobs.context import JobContext
from automill.jobs.registry import register
from automill.jobs.result import JobResult
from automill.problems.base import StoredExample
from automill.problems.registry import get_problem
from automill.services.housekeeping import uses_job_tmp
from automill.services.render import model_json
from automill.store import housekeeping as files
from automill.store.db import new_etag, next_number, utcnow
from automill.store.tables import AnnotationSpecRow, EvaluationRow, ExampleRow, ModelRow

#: Seconds of the budget held back from the learners for what follows their training (evaluating on
#: TEST, writing the files, an image model's ONNX export): the cost is the whole attempt's time, so
#: this keeps it within the budget. At most ``FINISH_SHARE`` of the budget.
FINISH_SECONDS = {"image_classification": 10.0, "image_object_detection": 10.0}
DEFAULT_FINISH_SECONDS = 2.0
FINISH_SHARE = 0.1


@register("create_model")
@uses_job_tmp
def create_model(ctx: JobContext) -> JobResult:
    sv = ctx.services
    req = ctx.request
    # The budget holds across attempts: a retry (its worker died) has what the earlier ones left,
    # and starts from what they saved in the operation's checkpoint folder (they count in the cost).
    budget = Deadline(milli_node_hours_to_seconds(int(req["budget"])), start=time.monotonic() - ctx.compute_seconds())
    checkpoint = files.job_tmp(sv.settings.data_dir, ctx.op_id) / "checkpoint"
    with sv.db.tx() as s:
        ds = sv.datasets.row(s, f"{req['parent']}/datasets/{req['dataset_id']}")
        meta = dict(ds.problem_metadata)
        specs = [
            (r.id, r.display_name)
            for r in s.execute(
                select(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == ds.id).order_by(AnnotationSpecRow.seq)
            ).scalars()
        ]
        examples = [
            StoredExample(r.content, r.ml_use, r.annotations, r.source_uri)
            for r in s.execute(
                select(ExampleRow).where(ExampleRow.dataset_id == ds.id).order_by(ExampleRow.id)
            ).scalars()
        ]
    models_dir = Path(sv.settings.data_dir) / "models"
    for stale in models_dir.glob(f".tmp-{ctx.op_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by an earlier, killed attempt
    tmp = models_dir / f".tmp-{ctx.op_id}-{ctx.attempt}"
    problem = get_problem(req["problem_type"])
    finish = min(FINISH_SECONDS.get(req["problem_type"], DEFAULT_FINISH_SECONDS), FINISH_SHARE * budget.seconds)
    deadline = Deadline(max(0.0, budget.remaining() - finish))  # the learners' own clock: this attempt's share
    if ctx.earlier_seconds and deadline.expired() and not (checkpoint.is_dir() and any(checkpoint.iterdir())):
        raise _used_up(req, budget, ctx)  # nothing to finish, no time to train
    again = f", {budget.remaining():.0f} s of it left (attempt {ctx.attempt})" if ctx.earlier_seconds else ""
    ctx.progress(1, stage=f"preparing: {len(examples):,} examples, a budget of {budget.seconds:.0f} s{again}")
    base_dir = None
    if req.get("base_model_id"):
        with sv.db.tx() as s:
            base_dir = Path(sv.models.row(s, f"{req['parent']}/models/{req['base_model_id']}").artifact_dir)
    media = {"read_media": sv.media.read} if getattr(problem, "uses_media", False) else {}
    try:
        # The budget's spent share lifts the progress every second, between the trainer's own reports;
        # 90..99 is left for what follows the budget (evaluating on TEST, writing the files).
        with BudgetProgress(ctx.progress, budget, lo=2, hi=90) as tracker:
            outcome = problem.train(
                examples,
                specs,
                meta,
                deadline=deadline,
                out_dir=tmp,
                progress=tracker.report,
                model_type=req.get("model_type", ""),
                base_dir=base_dir,
                checkpoint_dir=checkpoint,
                **media,
            )
    except BudgetExhausted as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if ctx.earlier_seconds:
            raise _used_up(req, budget, ctx) from None
        raise FailedPrecondition(
            f"the training budget of {req['budget']} milli node hours "
            f"({budget.seconds:.0f} s) ran out before a model was trained ({exc}): "
            "raise train_budget_milli_node_hours"
        ) from None
    model_metadata = dict(req["model_metadata"])
    if "node_qps" in outcome.info:
        model_metadata["nodeQps"] = outcome.info["node_qps"]
    cost = seconds_to_milli_node_hours(ctx.compute_seconds())  # all attempts'; the commit adds milliseconds
    ctx.progress(99, stage="saving the model and its evaluations")

    def commit(s: Any) -> dict[str, Any]:
        n = next_number(s, "model")
        model_id = make_id(problem.prefix, n)
        final = models_dir / model_id
        now = utcnow()
        row = ModelRow(
            id=model_id,
            project=ctx.project,
            location=ctx.location,
            display_name=req["display_name"],
            dataset_id=req["dataset_id"],
            problem_type=req["problem_type"],
            problem_metadata=model_metadata,
            labels=req["labels"],
            etag=new_etag(model_id, now),
            deployment_state="UNDEPLOYED",
            create_time=now,
            update_time=now,
            artifact_dir=str(final),
            train_budget_milli_node_hours=int(req["budget"]),
            train_cost_milli_node_hours=cost,
            stop_reason=outcome.stop_reason,
            model_type=req.get("model_type", ""),
            base_model_id=req.get("base_model_id", ""),
            seq=n,
        )
        s.add(row)
        for ev in outcome.evaluations:
            en = next_number(s, "model_evaluation")
            s.add(
                EvaluationRow(
                    id=make_id("", en),
                    model_id=model_id,
                    annotation_spec_id=ev.annotation_spec_id,
                    display_name=ev.display_name,
                    evaluated_example_count=ev.evaluated_example_count,
                    metrics_kind=ev.metrics_key,
                    metrics=ev.metrics,
                    create_time=now,
                    seq=en,
                )
            )
        s.flush()
        os.rename(tmp, final)
        return model_json(row, extensions=True)  # what GetModel returns (the api layer filters per caller)

    return JobResult(result_type="Model", commit=commit)


def _used_up(req: dict[str, Any], budget: Deadline, ctx: JobContext) -> DeadlineExceeded:
    """A retried training whose earlier attempts used the budget up and left nothing to finish."""
    return DeadlineExceeded(
        f"the training budget of {req['budget']} milli node hours ({budget.seconds:.0f} s) was used up: "
        f"earlier attempts of this training, stopped when their worker died, used {ctx.earlier_seconds:.0f} s "
        f"and left no model to finish, and {budget.remaining():.0f} s is too little to train one; "
        "train again (a new CreateModel request)"
    )
