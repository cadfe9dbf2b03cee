"""The DeployModel job, run by a worker only when the serving process that accepted the deploy was
lost while loading (its lease ran out and the sweep requeued it): check that the model's files
load, then mark it DEPLOYED. The serving process loads it again on the first predict."""

from __future__ import annotations

from pathlib import Path

from automill.jobs.context import JobContext
from automill.jobs.registry import register
from automill.jobs.result import JobResult
from automill.services.deployment import mark_deployed


@register("deploy_model")
def deploy_model(ctx: JobContext) -> JobResult:
    sv, req = ctx.services, ctx.request
    with sv.db.tx() as s:
        row = sv.models.row(s, req["model"])
        model_id, problem_type, model_dir = row.id, row.problem_type, Path(row.artifact_dir)
    ctx.progress(10, stage="loading the model")
    sv.serving.load(model_id, problem_type, model_dir)  # this process serves nothing: a check that it loads
    # locked as DeploymentService does: a model deleted meanwhile ends the operation NOT_FOUND
    return JobResult(commit=lambda s: mark_deployed(s, sv.models.locked(s, req["model"]), req.get("node_count")))
