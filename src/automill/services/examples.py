"""A dataset's examples as the web console browses them (an Automill extension: Google's API has no
RPC that lists examples; its console reads them through private calls).

``list`` pages a dataset's examples in import order, filtered by ML_USE and by label, each with its
content (text, or the image's media key) and its annotations in the AnnotationPayload shapes of the
API (classification, sentiment, a text segment, a bounding box). The first page also carries the
counts the Items tab draws: examples per label per split. ``media`` returns one imported image.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from automill.core import filters, paging
from automill.core.errors import InvalidArgument, NotFound
from automill.store.media import is_key
from automill.store.tables import AnnotationSpecRow, ExampleRow

if TYPE_CHECKING:
    from automill.services.container import Services

EXAMPLE_FILTER_FIELDS = {"mlUse", "ml_use", "annotationSpecId", "annotation_spec_id"}
ML_USES = ("TRAIN", "VALIDATION", "TEST", "UNASSIGNED")
#: Image types by media key extension.
MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "bmp": "image/bmp"}
MIME.update({"webp": "image/webp", "tif": "image/tiff", "tiff": "image/tiff", "ico": "image/x-icon"})


def spec_ids(annotations: Any) -> list[str]:
    """The annotation spec ids an example's stored annotations name (any problem type)."""
    out: list[str] = []
    for a in annotations or []:
        spec = a.get("spec") if isinstance(a, dict) else a
        if isinstance(spec, str) and spec not in out:
            out.append(spec)
    return out


def annotation_json(a: Any, specs: dict[str, str], problem_type: str) -> dict[str, Any] | None:
    """One stored annotation -> an AnnotationPayload-shaped dict (v1 JSON field names)."""
    spec = a.get("spec") if isinstance(a, dict) else a
    if spec not in specs:
        return None
    out: dict[str, Any] = {"annotationSpecId": spec, "displayName": specs[spec]}
    if isinstance(a, dict) and "box" in a:
        x0, y0, x1, y1 = (float(v) for v in a["box"])
        out["imageObjectDetection"] = {"boundingBox": {"normalizedVertices": [{"x": x0, "y": y0}, {"x": x1, "y": y1}]}}
    elif isinstance(a, dict) and "start" in a:
        out["textExtraction"] = {"textSegment": {"startOffset": str(a["start"]), "endOffset": str(a["end"])}}
    elif problem_type == "text_sentiment":
        try:
            out["textSentiment"] = {"sentiment": int(specs[spec])}
        except ValueError:
            out["textSentiment"] = {}
    else:
        out["classification"] = {"score": 1}
    return out


def _terms(filter_: str) -> tuple[set[str] | None, str | None]:
    """``mlUse=TRAIN AND annotationSpecId=123`` -> (the ML_USEs kept or None, the spec id or None)."""
    uses: set[str] | None = None
    spec: str | None = None
    for t in filters.parse_filter(filter_, EXAMPLE_FILTER_FIELDS):
        if t.kind != "eq" or t.negate:
            raise InvalidArgument(f"filter supports only {t.field}=VALUE on examples", field="filter")
        if t.field in ("mlUse", "ml_use"):
            value = t.value.upper()
            if value not in ML_USES:
                raise InvalidArgument(f"mlUse must be one of {', '.join(ML_USES)}, got {t.value!r}", field="filter")
            uses = {value} if uses is None else uses & {value}
        else:
            spec = t.value
    return uses, spec


class ExampleService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    def list(self, dataset_name: str, filter_: str = "", page_size: int = 0, page_token: str = "") -> dict[str, Any]:
        uses, spec = _terms(filter_)
        scope = f"examples|{dataset_name}|{filter_}"
        after = paging.decode_token(page_token, scope)
        size = paging.page_size(page_size)
        with self.sv.db.tx() as s:
            ds = self.sv.datasets.row(s, dataset_name)
            specs = {
                r.id: r.display_name
                for r in s.execute(
                    select(AnnotationSpecRow)
                    .where(AnnotationSpecRow.dataset_id == ds.id)
                    .order_by(AnnotationSpecRow.seq)
                ).scalars()
            }
            rows = s.execute(
                select(ExampleRow.id, ExampleRow.ml_use, ExampleRow.annotations)
                .where(ExampleRow.dataset_id == ds.id)
                .order_by(ExampleRow.id)
            ).all()
            counts: dict[str, Counter[str]] = {sid: Counter() for sid in specs}
            unlabeled: Counter[str] = Counter()
            kept: list[int] = []
            for ex_id, ml_use, annotations in rows:
                ids = spec_ids(annotations)
                if not page_token:
                    for sid in ids:
                        if sid in counts:
                            counts[sid][ml_use] += 1
                    if not ids:
                        unlabeled[ml_use] += 1
                if (uses is None or ml_use in uses) and (spec is None or spec in ids):
                    kept.append(ex_id)
            page = [i for i in kept if i > after][: size + 1]
            token = paging.encode_token(page[size - 1], scope) if len(page) > size else ""
            page = page[:size]
            full = (
                {r.id: r for r in s.execute(select(ExampleRow).where(ExampleRow.id.in_(page))).scalars()}
                if page
                else {}
            )
            examples = [self._json(dataset_name, full[i], specs, ds.problem_type) for i in page if i in full]
        out: dict[str, Any] = {"examples": examples, "totalSize": len(kept)}
        if token:
            out["nextPageToken"] = token
        if not page_token:
            out["labelCounts"] = [
                {"annotationSpecId": sid, "displayName": specs[sid], **{u: counts[sid][u] for u in ML_USES}}
                for sid in specs
            ]
            if unlabeled:
                out["unlabeledCounts"] = {u: unlabeled[u] for u in ML_USES}
        return out

    @staticmethod
    def _json(dataset_name: str, row: ExampleRow, specs: dict[str, str], problem_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": f"{dataset_name}/examples/{row.id}", "mlUse": row.ml_use}
        if problem_type.startswith("image_"):
            out["image"] = {"mimeType": MIME.get(row.content.rsplit(".", 1)[-1], "application/octet-stream")}
        else:
            out["textSnippet"] = {"content": row.content}
        if row.source_uri:
            out["sourceUri"] = row.source_uri
        anns = [annotation_json(a, specs, problem_type) for a in row.annotations or []]
        out["annotations"] = [a for a in anns if a is not None]
        return out

    def media(self, example_name: str) -> tuple[bytes, str]:
        """-> (the image's bytes, its MIME type) of an image example."""
        dataset_name, _, ex_id = example_name.rpartition("/examples/")
        if not ex_id.isdigit() or len(ex_id) > 18:
            raise NotFound(f"example {example_name} not found")
        with self.sv.db.tx() as s:
            ds = self.sv.datasets.row(s, dataset_name)
            row = s.get(ExampleRow, int(ex_id))
            if row is None or row.dataset_id != ds.id:
                raise NotFound(f"example {example_name} not found")
            key, problem_type = row.content, ds.problem_type
        if not problem_type.startswith("image_") or not is_key(key):
            raise NotFound(f"example {example_name} has no image (its dataset holds text)")
        return self.sv.media.read(key), MIME.get(key.rsplit(".", 1)[-1], "application/octet-stream")
