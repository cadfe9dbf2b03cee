"""Model use cases: create (a training job), get, list, update, delete, deploy, undeploy, export,
and model evaluations."""

from __future__ import annotations

import builtins  # list[...] inside the class below, where "list" is its list method
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from automill.core import filters, paging
from automill.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from automill.core.ids import split_name, split_parent
from automill.engine.model_types import text_preset
from automill.problems.registry import MODEL_KEYS, get_problem
from automill.services import eligibility, validation
from automill.services.datasets import normalize_mask
from automill.services.deployment import cancel_pending_deploys
from automill.services.lookup import find, lock, missing
from automill.services.operations import new_operation
from automill.services.render import OperationView, evaluation_json, model_json, operation_view
from automill.store.db import new_etag, utcnow
from automill.store.housekeeping import remove_model_files
from automill.store.tables import DatasetRow, EvaluationRow, ExampleRow, ModelRow

if TYPE_CHECKING:
    from automill.services.container import Services
    from automill.settings import Settings

MAX_TEXT_BUDGET = 100_000
MAX_IMAGE_BUDGET = 800_000  # Google's limit for `cloud` image models


def budget_limits(settings: Settings, problem_type: str) -> dict[str, int]:
    """The training budgets (milli node hours) CreateModel enforces for ``problem_type``: ``min``..``max``
    accepted (else INVALID_ARGUMENT), ``default`` when the request sets none (or 0), ``cap`` the server's
    cap that a larger budget is lowered to (0: none). The console's train panel shows these numbers."""
    image = problem_type.startswith("image_")
    default = settings.image_train_budget_milli_node_hours if image else settings.text_train_budget_milli_node_hours
    return {
        "min": 1,
        "max": MAX_IMAGE_BUDGET if image else MAX_TEXT_BUDGET,
        "default": default,
        "cap": max(0, settings.max_train_budget_milli_node_hours),
    }


MODEL_FILTER_FIELDS = (
    {"display_name", "displayName", "dataset_id", "datasetId"}
    | {"".join("_" + c.lower() if c.isupper() else c for c in k) for k in MODEL_KEYS}
    | set(MODEL_KEYS)
)
EVAL_FILTER_FIELDS = {"annotation_spec_id", "annotationSpecId"}
#: v1beta1 model metadata of problem types Automill does not implement.
UNSUPPORTED_MODEL_KEYS = ("videoClassificationModelMetadata", "videoObjectTrackingModelMetadata", "tablesModelMetadata")
MUTABLE = {"displayName": "display_name", "labels": "labels"}
EXPORT_FORMATS = {"tflite", "edgetpu_tflite", "tf_saved_model", "tf_js", "core_ml", "docker"}


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


class ModelService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    def row(self, s: Session, name: str) -> ModelRow:
        return find(s, ModelRow, name, "models", "model")

    def locked(self, s: Session, name: str) -> ModelRow:
        """The row, write-locked first in the transaction: delete, deploy and undeploy of one model
        run one after the other (see ``lock``)."""
        return lock(s, ModelRow, name, "models", "model")

    # -- create = train -----------------------------------------------------------------------------
    def create(self, parent: str, model: dict[str, Any], extensions: dict[str, Any]) -> OperationView:
        project, location = split_parent(parent)
        unsupported = [k for k in UNSUPPORTED_MODEL_KEYS if k in model]
        if unsupported:  # v1beta1 types Automill cannot train: UNIMPLEMENTED naming the field, as for datasets
            raise Unimplemented(
                f"{unsupported[0]}: video and Tables models are not supported by Automill",
                field=f"model.{_snake(unsupported[0])}",
            )
        keys = [k for k in MODEL_KEYS if k in model]
        if len(keys) != 1:
            raise InvalidArgument(
                "model must set exactly one model metadata field matching its dataset, e.g. "
                "textClassificationModelMetadata: {}",
                field="model.model_metadata",
            )
        name = validation.model_display_name(model.get("displayName", ""))
        labels = validation.labels(model.get("labels", {}), "model.labels")
        dataset_id = model.get("datasetId", "")
        if not dataset_id:
            raise InvalidArgument("model.dataset_id is required", field="model.dataset_id")
        with self.sv.db.tx() as s:
            if "/" in dataset_id:  # an ID, not a name: the name built below must not point elsewhere
                raise missing("dataset", f"{parent}/datasets/{dataset_id}")
            # Locked, so that the dataset cannot be deleted between the checks below and the queued job.
            ds = lock(s, DatasetRow, f"{parent}/datasets/{dataset_id}", "datasets", "dataset")
            if MODEL_KEYS[keys[0]] != ds.problem_type:
                raise InvalidArgument(
                    f"model.{_snake(keys[0])} does not match the dataset's problem type {ds.problem_type}",
                    field="model.model_metadata",
                )
            problem = get_problem(ds.problem_type)
            request_meta = dict(model[keys[0]] or {})
            if ds.problem_type.startswith("text_"):
                source = extensions  # Automill's extension fields for text models
                model_type = text_preset(str(extensions.get("modelType", "")))[0]
                meta = problem.model_metadata(dict(ds.problem_metadata), request_meta)
            else:  # image models carry budget, model type and base model in their metadata
                source = {**extensions, **request_meta}  # a top-level baseModelId lands in extensions
                meta = problem.model_metadata(dict(ds.problem_metadata), request_meta)
                model_type = meta.get("modelType", "")
            budget = self._budget(source.get("trainBudgetMilliNodeHours"), ds.problem_type)
            base_id = str(source.get("baseModelId", "") or "")
            count = s.execute(
                select(func.count()).select_from(ExampleRow).where(ExampleRow.dataset_id == ds.id)
            ).scalar_one()
            if not count:
                raise FailedPrecondition(f"dataset {dataset_id} has no examples: import data before training")
            if base_id:
                self._check_base(s, project, location, base_id, ds, model_type)
            op = new_operation(
                s,
                project=project,
                location=location,
                prefix=ds.id[:3],
                kind="create_model",
                limit=self.sv.settings.max_running_operations_per_project,
                details_key="createModelDetails",
                works_on=f"{parent}/datasets/{ds.id}",
                result_type="Model",
                max_attempts=self.sv.settings.max_attempts,
                request={
                    "parent": parent,
                    "display_name": name,
                    "labels": labels,
                    "dataset_id": ds.id,
                    "problem_type": ds.problem_type,
                    "model_metadata": meta,
                    "budget": budget,
                    "model_type": model_type,
                    "base_model_id": base_id,
                    "_hard_timeout_s": budget * 3.6 * 1.5 + 120,
                },
            )
            return operation_view(op)

    @staticmethod
    def _check_base(s: Session, project: str, location: str, base_id: str, ds: DatasetRow, model_type: str) -> None:
        """Resumable training: same project and location, then Google's rules (services.eligibility)."""
        base = s.get(ModelRow, base_id)
        if base is None or base.project != project or base.location != location:
            # Another project's model answers as an unknown one: model IDs and their owners stay private.
            raise NotFound(f"base model {base_id} not found")
        broken = eligibility.problems(s, base, ds, model_type)
        if broken:
            raise FailedPrecondition(broken[0].message, field="model.base_model_id")

    def resume_eligibility(self, name: str) -> dict[str, Any]:
        """Automill extension: whether the model can be the base of a new training, and if not, why."""
        with self.sv.db.tx() as s:
            return eligibility.eligibility(s, self.row(s, name)).as_json()

    def _budget(self, raw: Any, problem_type: str) -> int:
        """The training budget: the request's, or the server's default, never over the server's cap
        (``max_train_budget_milli_node_hours``; the model reports the budget it really had)."""
        cap = budget_limits(self.sv.settings, problem_type)["cap"]
        value = self._requested_budget(raw, problem_type)
        return min(value, cap) if cap > 0 else value

    def _requested_budget(self, raw: Any, problem_type: str) -> int:
        limits = budget_limits(self.sv.settings, problem_type)
        if raw in (None, "", 0, "0"):
            return limits["default"]
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"trainBudgetMilliNodeHours must be an integer, got {raw!r}",
                field="model.train_budget_milli_node_hours",
            ) from None
        if not limits["min"] <= value <= limits["max"]:
            raise InvalidArgument(
                f"trainBudgetMilliNodeHours must be in {limits['min']}..{limits['max']}, got {value}",
                field="model.train_budget_milli_node_hours",
            )
        return value

    # -- read ---------------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any]:
        with self.sv.db.tx() as s:
            return model_json(self.row(s, name), extensions=True)

    def list(
        self, parent: str, filter_: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        project, location = split_parent(parent)
        terms = filters.parse_filter(filter_, MODEL_FILTER_FIELDS)
        scope = f"models|{parent}|{filter_}"
        after, size = paging.decode_token(page_token, scope), paging.page_size(page_size)

        def keep(row: ModelRow) -> bool:
            key = next(k for k, v in MODEL_KEYS.items() if v == row.problem_type)
            record = {
                "display_name": row.display_name,
                "displayName": row.display_name,
                "dataset_id": row.dataset_id,
                "datasetId": row.dataset_id,
            }
            return filters.matches(terms, record, exists=lambda f: f in (key, _snake(key)) or bool(record.get(f)))

        with self.sv.db.tx() as s:
            q = (
                select(ModelRow)
                .where(ModelRow.project == project, ModelRow.location == location, ModelRow.seq > after)
                .order_by(ModelRow.seq)
            )
            return paging.paginate(
                s.execute(q).scalars(),
                keep=keep,
                render=lambda r: model_json(r, extensions=True),
                seq=lambda r: r.seq,
                size=size,
                scope=scope,
            )

    def update(self, model: dict[str, Any], update_mask: str | builtins.list[str] | None) -> dict[str, Any]:
        mask = normalize_mask(update_mask, MUTABLE, "model")
        if mask is None:
            mask = [k for k in ("displayName", "labels") if k in model]
        with self.sv.db.tx() as s:
            row = self.row(s, model.get("name", ""))
            if model.get("etag") and model["etag"] != row.etag:
                raise FailedPrecondition(f"etag {model['etag']!r} does not match the model's current etag {row.etag!r}")
            if "displayName" in mask:
                row.display_name = validation.model_display_name(model.get("displayName", ""))
            if "labels" in mask:
                row.labels = validation.labels(model.get("labels", {}), "model.labels")
            row.update_time = utcnow()
            row.etag = new_etag(row.id, row.update_time)
            return model_json(row, extensions=True)

    # -- lifecycle ----------------------------------------------------------------------------------
    def delete(self, name: str) -> OperationView:
        with self.sv.db.tx() as s:
            row = self.locked(s, name)  # a second delete waits here, then finds no row: NOT_FOUND
            artifact = row.artifact_dir
            cancel_pending_deploys(s, name)  # a deploy still loading must not mark a deleted model DEPLOYED
            s.execute(delete(EvaluationRow).where(EvaluationRow.model_id == row.id))
            s.delete(row)
            op = new_operation(
                s,
                project=row.project,
                location=row.location,
                prefix=row.id[:3],
                kind="delete_model",
                details_key="deleteDetails",
                works_on=name,
                done=True,
            )
            view = operation_view(op)
        self.sv.serving.evict(row.id)
        remove_model_files(artifact)  # renamed to models/.deleted-* first: a crash leaves it to the sweep
        return view

    def export(self, name: str, output_config: dict[str, Any]) -> OperationView:
        from automill.engine.image import EXPORT_QUANTIZATION
        from automill.export.edge import FORMATS, QUANTIZATIONS

        params = {k: str(v) for k, v in (output_config.get("params") or {}).items()}
        with self.sv.db.tx() as s:
            row = self.row(s, name)
            image = row.problem_type.startswith("image_")
            fmt = output_config.get("modelFormat", "") or ("tflite" if image else "docker")
            if fmt not in EXPORT_FORMATS | set(FORMATS):
                raise InvalidArgument(
                    f"model_format {fmt!r} is unknown; formats: {sorted(EXPORT_FORMATS | set(FORMATS))}",
                    field="output_config.model_format",
                )
            if fmt == "docker":  # every problem type: export/docker.py
                if params:
                    raise InvalidArgument(
                        f"unknown export params {sorted(params)}; docker exports take none",
                        field="output_config.params",
                    )
                return self._export_operation(s, row, name, output_config, fmt, "")
            if not image:
                raise FailedPrecondition(
                    f"model {row.display_name} ({row.problem_type}) cannot be exported as {fmt!r}: tflite and onnx "
                    "are for image models; export it with model_format docker"
                )
            if fmt not in FORMATS:
                raise Unimplemented(
                    f"model_format {fmt!r} cannot be produced by Automill; supported formats: "
                    f"{', '.join(FORMATS)}, docker (onnx is an Automill extension)"
                )
            # the model type's default quantization is a TF Lite one; ONNX exports are float32
            typed = row.problem_type == "image_classification" and fmt == "tflite"
            quantization = params.pop("quantization", "") or (
                EXPORT_QUANTIZATION.get(row.model_type, "float32") if typed else "float32"
            )
            if quantization not in QUANTIZATIONS or (fmt == "onnx" and quantization != "float32"):
                allowed = QUANTIZATIONS if fmt == "tflite" else ("float32",)
                raise InvalidArgument(
                    f"params.quantization {quantization!r} is not available for {fmt}; use one of {list(allowed)}",
                    field="output_config.params.quantization",
                )
            if params:
                raise InvalidArgument(
                    f"unknown export params {sorted(params)}; the only one is quantization",
                    field="output_config.params",
                )
            return self._export_operation(s, row, name, output_config, fmt, quantization)

    def _export_operation(
        self, s: Session, row: ModelRow, name: str, output_config: dict[str, Any], fmt: str, quantization: str
    ) -> OperationView:
        prefix = validation.output_prefix(output_config, self.sv.blobs)
        op = new_operation(
            s,
            project=row.project,
            location=row.location,
            prefix=row.id[:3],
            kind="export_model",
            limit=self.sv.settings.max_running_operations_per_project,
            details_key="exportModelDetails",
            works_on=name,
            result_type="Empty",
            max_attempts=self.sv.settings.max_attempts,
            request={"model": name, "format": fmt, "quantization": quantization, "output_uri_prefix": prefix},
        )
        return operation_view(op)

    # -- evaluations --------------------------------------------------------------------------------
    def get_evaluation(self, name: str) -> dict[str, Any]:
        parts = name.split("/")
        if len(parts) != 8 or parts[6] != "modelEvaluations":
            raise InvalidArgument(f"name {name!r} must look like projects/P/locations/L/models/M/modelEvaluations/E")
        with self.sv.db.tx() as s:
            model = self.row(s, "/".join(parts[:6]))
            ev = s.get(EvaluationRow, parts[7])
            if ev is None or ev.model_id != model.id:
                raise missing("model evaluation", name)
            return evaluation_json(ev, model.project, model.location)

    def list_evaluations(
        self, parent: str, filter_: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        project, location, model_id = split_name(parent, "models")
        terms = filters.parse_filter(filter_, EVAL_FILTER_FIELDS)
        scope = f"evals|{parent}|{filter_}"
        after, size = paging.decode_token(page_token, scope), paging.page_size(page_size)
        with self.sv.db.tx() as s:
            q = (
                select(EvaluationRow)
                .join(ModelRow, ModelRow.id == EvaluationRow.model_id)
                .where(ModelRow.project == project, ModelRow.location == location, EvaluationRow.seq > after)
            )
            if model_id != "-":
                self.row(s, parent)
                q = q.where(EvaluationRow.model_id == model_id)
            return paging.paginate(
                s.execute(q.order_by(EvaluationRow.seq)).scalars(),
                keep=lambda ev: filters.matches(
                    terms, {"annotation_spec_id": ev.annotation_spec_id, "annotationSpecId": ev.annotation_spec_id}
                ),
                render=lambda ev: evaluation_json(ev, project, location),
                seq=lambda ev: ev.seq,
                size=size,
                scope=scope,
            )
