"""The DeployModel job, run by a worker only when the serving process that accepted the deploy was
lost while loading (its lease ran out and the sweep requeued it): check that the model's files
load, then mark it DEPLOYED. The serving process loads it again on the first predict."""

from __future__ import annotations

from pathlib import Path

from automill.core.errors import FailedPrecondition
from automill.jobs.context import JobContext
from automill.jobs.registry import JobResult, register
from automill.problems.base import get_problem
from automill.services.deployment import mark_deployed


@register("deploy_model")
def deploy_model(ctx: JobContext) -> JobResult:
    sv, req = ctx.services, ctx.request
    with sv.db.tx() as s:
        row = sv.models.row(s, req["model"])
        problem_type, model_dir = row.problem_type, Path(row.artifact_dir)
    if not model_dir.exists():
        raise FailedPrecondition(f"the files of model {req['model']} are missing from {model_dir}")
    get_problem(problem_type).load(model_dir)
    return JobResult(commit=lambda s: mark_deployed(s, sv.models.row(s, req["model"]), req.get("node_count")))
