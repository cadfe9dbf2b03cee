"""The ExportModel job: an edge package (TF Lite or ONNX) of an image model, with a parity check, or
a docker package (any model) that serves :predict on its own."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from automill.core.errors import FailedPrecondition
from automill.export.edge import export_detector_package, export_package
from automill.jobs.context import JobContext
from automill.jobs.registry import register
from automill.jobs.result import JobResult
from automill.problems.base import StoredExample, is_image_problem
from automill.problems.images import decode_batch, image_splits
from automill.problems.registry import get_problem
from automill.services.handlers.data import gcs_timestamp
from automill.services.housekeeping import uses_job_tmp
from automill.serving.cache import require_files
from automill.store.housekeeping import staging
from automill.store.tables import ExampleRow

log = logging.getLogger(__name__)

#: Held-out images the exported file is checked on against the in-process model.
PARITY_IMAGES = 64


@register("export_model")
@uses_job_tmp
def export_model(ctx: JobContext) -> JobResult:
    sv, req = ctx.services, ctx.request
    with sv.db.tx() as s:
        row = sv.models.row(s, req["model"])
        display_name, problem_type, model_dir, dataset_id = (
            row.display_name,
            row.problem_type,
            Path(row.artifact_dir),
            row.dataset_id,
        )
        examples = (
            []
            if req["format"] == "docker"
            else [
                StoredExample(e.content, e.ml_use, e.annotations)
                for e in s.execute(
                    select(ExampleRow).where(ExampleRow.dataset_id == dataset_id).order_by(ExampleRow.id)
                ).scalars()
            ]
        )
    if req["format"] == "docker":
        return export_docker(ctx, display_name, problem_type, model_dir)
    keys = [e.content for e in image_splits(examples)[2]][:PARITY_IMAGES]  # the TEST images, as in training
    problem = get_problem(problem_type)
    if not is_image_problem(problem):
        raise FailedPrecondition(f"a {problem_type} model exports only as a docker folder")  # refused at request time
    labels = json.loads((model_dir / "model.json").read_text())["display_names"]
    model = problem.load_weights(model_dir)
    images = []
    for key in keys:
        try:
            images.append(sv.media.read(key))
        except Exception:  # an image gone since training: the parity check uses the others
            log.info("export parity check: skipping unreadable image %s", key, exc_info=True)
    check = decode_batch(images, model.size) if images else np.zeros((0, model.size, model.size, 3), dtype=np.uint8)
    ctx.progress(10, stage=f"exporting to {req['format']} and checking it against the served model")
    out_dir = f"{req['output_uri_prefix'].rstrip('/')}/model-export-{display_name}-{gcs_timestamp()}"
    with staging(sv.settings.data_dir, ctx.op_id, "export-") as tmp:
        package = export_detector_package if problem_type == "image_object_detection" else export_package
        package(model, labels, req["format"], req["quantization"], Path(tmp), check)
        ctx.progress(90, stage="writing the exported files")
        upload(sv, Path(tmp), out_dir)
    return JobResult(details={"outputInfo": {"gcsOutputDirectory": out_dir}})


def export_docker(ctx: JobContext, display_name: str, problem_type: str, model_dir: Path) -> JobResult:
    """Any model: its serving files, a manifest, Automill's source, a Dockerfile and a README
    (export/docker.py), served by ``automill serve-model`` with or without docker."""
    from automill.export.docker import export_docker_package
    from automill.problems.registry import MODEL_KEYS

    sv, req = ctx.services, ctx.request
    require_files(req["model"].rsplit("/", 1)[-1], model_dir)
    out_dir = f"{req['output_uri_prefix'].rstrip('/')}/model-export-{display_name}-{gcs_timestamp()}"
    with staging(sv.settings.data_dir, ctx.op_id, "export-") as tmp:
        export_docker_package(
            model_dir,
            Path(tmp),
            problem_type=problem_type,
            model_name=req["model"],
            display_name=display_name,
            metadata_key=next((k for k, v in MODEL_KEYS.items() if v == problem_type), ""),
            predict_params=tuple(getattr(get_problem(problem_type), "predict_params", ())),
        )
        ctx.progress(50, stage="writing the exported files")
        upload(sv, Path(tmp), out_dir)
    return JobResult(details={"outputInfo": {"gcsOutputDirectory": out_dir}})


def upload(sv: Any, folder: Path, out_dir: str) -> None:
    """Every file under ``folder`` to ``out_dir/<relative path>`` in the blob store."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with sv.blobs.open_write(f"{out_dir}/{path.relative_to(folder).as_posix()}") as fh, open(path, "rb") as src:
            shutil.copyfileobj(src, fh)
