"""Dataset use cases: create, get, list, update, delete, annotation specs, import and export requests."""

from __future__ import annotations

import builtins  # list[...] inside the classes below, where "list" is their list method
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from automill.core import filters, paging
from automill.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from automill.core.ids import PREFIXES, make_id, parent_of, split_parent
from automill.problems.registry import DATASET_KEYS, get_problem
from automill.services import validation
from automill.services.lookup import DATASET_DATA_MISSING, find, lock, missing
from automill.services.operations import new_operation
from automill.services.render import OperationView, annotation_spec_json, dataset_json, operation_view
from automill.store.blobs import split_gs
from automill.store.db import new_etag, next_number, utcnow
from automill.store.housekeeping import free_media
from automill.store.tables import AnnotationSpecRow, DatasetRow, ExampleRow, ModelRow, OperationRow

if TYPE_CHECKING:
    from automill.services.container import Services

log = logging.getLogger(__name__)

DATASET_FILTER_FIELDS = (
    {"display_name", "displayName"}
    | {f"{k[0].lower()}{''.join('_' + c.lower() if c.isupper() else c for c in k[1:])}" for k in DATASET_KEYS}
    | set(DATASET_KEYS)
)
SUPPORTED_AT_CREATE = {
    "text_classification",
    "text_sentiment",
    "text_extraction",
    "image_classification",
    "image_object_detection",
}
MUTABLE = {"displayName": "display_name", "description": "description", "labels": "labels", "etag": "etag"}


def normalize_mask(mask: str | list[str] | None, allowed: dict[str, str], what: str) -> list[str] | None:
    """camelCase or snake_case paths -> camelCase field names; None = no mask given."""
    if mask is None:
        return None
    paths = mask.split(",") if isinstance(mask, str) else list(mask)
    out = []
    for raw in paths:
        path = raw.strip()
        if not path:
            continue
        camel = path.split("_")[0] + "".join(p.title() for p in path.split("_")[1:])
        if camel not in allowed:
            raise InvalidArgument(
                f"update_mask path {path!r} cannot be updated on a {what}; updatable: {sorted(allowed.values())}",
                field="update_mask",
            )
        out.append(camel)
    return out


class DatasetService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    # -- helpers ------------------------------------------------------------------------------------
    def row(self, s: Session, name: str) -> DatasetRow:
        return find(s, DatasetRow, name, "datasets", "dataset")

    def locked(self, s: Session, name: str) -> DatasetRow:
        """The row, write-locked first in the transaction: checks made after it cannot race (see ``lock``)."""
        return lock(s, DatasetRow, name, "datasets", "dataset")

    def _json(self, s: Session, row: DatasetRow) -> dict[str, Any]:
        count = s.execute(
            select(func.count()).select_from(ExampleRow).where(ExampleRow.dataset_id == row.id)
        ).scalar_one()
        return dataset_json(row, int(count))

    # -- CRUD ---------------------------------------------------------------------------------------
    def create(self, parent: str, dataset: dict[str, Any]) -> dict[str, Any]:
        project, location = split_parent(parent)
        unsupported = [
            k
            for k in (
                "videoClassificationDatasetMetadata",
                "videoObjectTrackingDatasetMetadata",
                "tablesDatasetMetadata",
            )
            if k in dataset
        ]
        if unsupported:
            raise Unimplemented(f"{unsupported[0]} datasets (video, Tables) are not supported by Automill")
        keys = [k for k in DATASET_KEYS if k in dataset]
        if len(keys) != 1:
            raise InvalidArgument(
                "dataset must set exactly one dataset metadata field, e.g. textClassificationDatasetMetadata",
                field="dataset.dataset_metadata",
            )
        problem_type = DATASET_KEYS[keys[0]]
        if problem_type not in SUPPORTED_AT_CREATE:
            raise Unimplemented(f"{keys[0]} datasets are not supported by this server")
        meta = dict(dataset.get(keys[0]) or {})
        # A type not implemented yet is storable now; import and training say clearly it is not available.
        with contextlib.suppress(Unimplemented):
            meta = get_problem(problem_type).validate_dataset_metadata(meta)
        name = validation.dataset_display_name(dataset.get("displayName", ""))
        desc = validation.description(dataset.get("description", ""), "dataset.description")
        labels = validation.labels(dataset.get("labels", {}), "dataset.labels")
        with self.sv.db.tx() as s:
            n = next_number(s, "dataset")
            now = utcnow()
            row = DatasetRow(
                id=make_id(PREFIXES[problem_type], n),
                project=project,
                location=location,
                display_name=name,
                description=desc,
                problem_type=problem_type,
                problem_metadata=meta,
                labels=labels,
                etag=new_etag(n, now),
                create_time=now,
                seq=n,
            )
            s.add(row)
            s.flush()
            return dataset_json(row, 0)

    def create_operation(self, parent: str, dataset: dict[str, Any]) -> OperationView:
        """v1 CreateDataset: an LRO, done at once."""
        created = self.create(parent, dataset)
        project, location = split_parent(parent)
        with self.sv.db.tx() as s:
            prefix = created["name"].rsplit("/", 1)[-1][:3]
            op = new_operation(
                s,
                project=project,
                location=location,
                prefix=prefix,
                kind="create_dataset",
                details_key="createDatasetDetails",
                works_on=created["name"],
                result_type="Dataset",
                done_result=created,
                done=True,
            )
            return operation_view(op)

    def get(self, name: str) -> dict[str, Any]:
        with self.sv.db.tx() as s:
            return self._json(s, self.row(s, name))

    def list(
        self, parent: str, filter_: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        project, location = split_parent(parent)
        terms = filters.parse_filter(filter_, DATASET_FILTER_FIELDS)
        scope = f"datasets|{parent}|{filter_}"
        after, size = paging.decode_token(page_token, scope), paging.page_size(page_size)

        def keep(row: DatasetRow) -> bool:
            key = next(k for k, v in DATASET_KEYS.items() if v == row.problem_type)
            snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
            record = {"display_name": row.display_name, "displayName": row.display_name}
            return filters.matches(terms, record, exists=lambda f: f in (key, snake) or bool(record.get(f)))

        with self.sv.db.tx() as s:
            q = (
                select(DatasetRow)
                .where(DatasetRow.project == project, DatasetRow.location == location, DatasetRow.seq > after)
                .order_by(DatasetRow.seq)
            )
            rows, token = paging.paginate(
                s.execute(q).scalars(), keep=keep, render=lambda r: r, seq=lambda r: r.seq, size=size, scope=scope
            )
            # The page's example counts in one query, not one per dataset (the console lists 100 at once).
            counted = (
                select(ExampleRow.dataset_id, func.count())
                .where(ExampleRow.dataset_id.in_([r.id for r in rows]))
                .group_by(ExampleRow.dataset_id)
            )
            counts: dict[str, int] = {dataset_id: int(n) for dataset_id, n in s.execute(counted)}
            return [dataset_json(r, counts.get(r.id, 0)) for r in rows], token

    def update(self, dataset: dict[str, Any], update_mask: str | builtins.list[str] | None) -> dict[str, Any]:
        mask = normalize_mask(update_mask, MUTABLE, "dataset")
        if mask is None:
            mask = [k for k in ("displayName", "description", "labels") if k in dataset]
        with self.sv.db.tx() as s:
            row = self.row(s, dataset.get("name", ""))
            if dataset.get("etag") and dataset["etag"] != row.etag:
                raise FailedPrecondition(
                    f"etag {dataset['etag']!r} does not match the dataset's current etag "
                    f"{row.etag!r}: it was changed since you read it"
                )
            if "displayName" in mask:
                row.display_name = validation.dataset_display_name(dataset.get("displayName", ""))
            if "description" in mask:
                row.description = validation.description(dataset.get("description", ""), "dataset.description")
            if "labels" in mask:
                row.labels = validation.labels(dataset.get("labels", {}), "dataset.labels")
            row.etag = new_etag(row.id, utcnow(), row.display_name, row.description)
            return self._json(s, row)

    def delete(self, name: str) -> OperationView:
        with self.sv.db.tx() as s:
            row = self.locked(s, name)  # a second delete waits here, then finds no row: NOT_FOUND
            running = s.execute(
                select(OperationRow.id).where(
                    OperationRow.works_on == name, OperationRow.state.in_(["QUEUED", "RUNNING"])
                )
            ).first()
            if running:
                raise FailedPrecondition(
                    f"dataset {name} has a running operation {running[0]}; wait for it or cancel it"
                )
            keys = (
                list(s.execute(select(ExampleRow.content).where(ExampleRow.dataset_id == row.id)).scalars())
                if row.problem_type.startswith("image_")
                else []
            )
            s.execute(delete(ExampleRow).where(ExampleRow.dataset_id == row.id))
            s.execute(delete(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == row.id))
            s.delete(row)
            op = new_operation(
                s,
                project=row.project,
                location=row.location,
                prefix=row.id[:3],
                kind="delete_dataset",
                details_key="deleteDetails",
                works_on=name,
                done=True,
            )
            view = operation_view(op)
        # Committed: now free the images no other dataset's example names (read again under the media
        # lock). Models never read them. What a crash leaves here, the sweep frees.
        if keys:
            try:
                free_media(self.sv.db, self.sv.media, keys)
            except Exception:
                log.warning("freeing the images of dataset %s failed; the sweep will", name, exc_info=True)
        return view

    # -- annotation specs ---------------------------------------------------------------------------
    def get_annotation_spec(self, name: str) -> dict[str, Any]:
        parts = name.split("/")
        if len(parts) != 8 or parts[6] != "annotationSpecs":
            raise InvalidArgument(f"name {name!r} must look like projects/P/locations/L/datasets/D/annotationSpecs/S")
        with self.sv.db.tx() as s:
            ds = self.row(s, "/".join(parts[:6]))
            spec = s.get(AnnotationSpecRow, parts[7])
            if spec is None or spec.dataset_id != ds.id:
                raise missing("annotation spec", name)
            return annotation_spec_json(spec, ds.project, ds.location, self._spec_counts(s, ds.id).get(spec.id, 0))

    def list_annotation_specs(self, dataset_name: str) -> builtins.list[dict[str, Any]]:
        with self.sv.db.tx() as s:
            ds = self.row(s, dataset_name)
            counts = self._spec_counts(s, ds.id)
            specs = s.execute(
                select(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == ds.id).order_by(AnnotationSpecRow.seq)
            ).scalars()
            return [annotation_spec_json(r, ds.project, ds.location, counts.get(r.id, 0)) for r in specs]

    @staticmethod
    def _spec_counts(s: Session, dataset_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (ann,) in s.execute(select(ExampleRow.annotations).where(ExampleRow.dataset_id == dataset_id)):
            if isinstance(ann, list):  # classification: spec ids; extraction: {"spec": id, ...} per entity
                for sid in {a["spec"] if isinstance(a, dict) else a for a in ann}:
                    counts[sid] = counts.get(sid, 0) + 1
        return counts

    # -- import / export requests ---------------------------------------------------------------------
    def import_data(self, name: str, input_config: dict[str, Any]) -> OperationView:
        uris = list((input_config.get("gcsSource") or {}).get("inputUris") or [])
        if not uris:
            raise InvalidArgument(
                "input_config.gcs_source.input_uris must list at least one gs:// CSV file",
                field="input_config.gcs_source.input_uris",
            )
        for uri in uris:
            split_gs(uri)
            if len(uri) > 2000:
                raise InvalidArgument(f"input URI is over 2000 characters: {uri[:80]}...")
            self.sv.blobs.resolve(uri)  # refuse paths that leave their bucket before queueing anything
        with self.sv.db.tx() as s:
            try:
                ds = self.locked(s, name)  # makes the one-import-at-a-time check below atomic
            except NotFound:
                raise missing("dataset", name, DATASET_DATA_MISSING) from None
            get_problem(ds.problem_type)
            self._no_running(s, name, "import_data")
            op = new_operation(
                s,
                project=ds.project,
                location=ds.location,
                prefix=ds.id[:3],
                kind="import_data",
                limit=self.sv.settings.max_running_operations_per_project,
                details_key="importDataDetails",
                works_on=name,
                max_attempts=self.sv.settings.max_attempts,
                request={"dataset": name, "input_uris": uris, "params": input_config.get("params", {})},
            )
            return operation_view(op)

    def export_data(self, name: str, output_config: dict[str, Any]) -> OperationView:
        prefix = validation.output_prefix(output_config, self.sv.blobs)
        with self.sv.db.tx() as s:
            try:
                ds = self.locked(s, name)  # not queued for a dataset whose delete is committing
            except NotFound:
                raise missing("dataset", name, DATASET_DATA_MISSING) from None
            op = new_operation(
                s,
                project=ds.project,
                location=ds.location,
                prefix=ds.id[:3],
                kind="export_data",
                limit=self.sv.settings.max_running_operations_per_project,
                details_key="exportDataDetails",
                works_on=name,
                max_attempts=self.sv.settings.max_attempts,
                request={"dataset": name, "output_uri_prefix": prefix},
            )
            return operation_view(op)

    @staticmethod
    def _no_running(s: Session, works_on: str, kind: str) -> None:
        running = s.execute(
            select(OperationRow.id).where(
                OperationRow.works_on == works_on,
                OperationRow.kind == kind,
                OperationRow.state.in_(["QUEUED", "RUNNING"]),
            )
        ).first()
        if running:
            raise FailedPrecondition(f"{works_on} already has a {kind} operation running: {running[0]}")


def location_of(row: DatasetRow | ModelRow) -> str:
    return parent_of(row.project, row.location)
