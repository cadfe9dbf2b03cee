"""SQLAlchemy tables. The schema is created and upgraded by Alembic (store/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class IdSequence(Base):
    """One row per allocated ID: AUTOINCREMENT (SQLite) / IDENTITY (PostgreSQL) never reuse a number."""

    __tablename__ = "id_sequence"
    __table_args__ = ({"sqlite_autoincrement": True},)  # (constraints..., keyword arguments)
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    problem_type: Mapped[str] = mapped_column(String(32))
    #: The problem's dataset metadata message as JSON (e.g. {"classificationType": "MULTICLASS"}).
    problem_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    etag: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(DateTime)
    seq: Mapped[int] = mapped_column(Integer)


class AnnotationSpecRow(Base):
    __tablename__ = "annotation_specs"
    __table_args__ = (UniqueConstraint("dataset_id", "display_name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)


class ExampleRow(Base):
    __tablename__ = "examples"
    __table_args__ = (UniqueConstraint("dataset_id", "content_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    source_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    ml_use: Mapped[str] = mapped_column(String(16))
    #: Problem-specific ground truth: classification = list of annotation spec ids.
    annotations: Mapped[Any] = mapped_column(JSON)


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    problem_type: Mapped[str] = mapped_column(String(32))
    problem_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    etag: Mapped[str] = mapped_column(String(64))
    deployment_state: Mapped[str] = mapped_column(String(32), default="UNDEPLOYED")
    create_time: Mapped[datetime] = mapped_column(DateTime)
    update_time: Mapped[datetime] = mapped_column(DateTime)
    artifact_dir: Mapped[str] = mapped_column(Text)
    train_budget_milli_node_hours: Mapped[int] = mapped_column(Integer, default=0)
    train_cost_milli_node_hours: Mapped[int] = mapped_column(Integer, default=0)
    stop_reason: Mapped[str] = mapped_column(String(32), default="")
    #: The model type the model was trained with (text: an Automill extension field).
    model_type: Mapped[str] = mapped_column(String(64), default="", server_default="")
    base_model_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    seq: Mapped[int] = mapped_column(Integer)


class EvaluationRow(Base):
    __tablename__ = "model_evaluations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    annotation_spec_id: Mapped[str] = mapped_column(String(64), default="")
    display_name: Mapped[str] = mapped_column(String(64), default="")
    evaluated_example_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The oneof key, e.g. "classificationEvaluationMetrics", and its JSON.
    metrics_kind: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    create_time: Mapped[datetime] = mapped_column(DateTime)
    seq: Mapped[int] = mapped_column(Integer)


class OperationRow(Base):
    """A long-running operation and the durable job that carries it out."""

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_state_queued", "state", "created_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(48))  # job handler name, e.g. "create_model"
    details_key: Mapped[str] = mapped_column(String(64))  # OperationMetadata oneof, e.g. "createModelDetails"
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    works_on: Mapped[str] = mapped_column(Text, default="")  # resource name the operation works on
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # jobs.states.JobState
    progress_percent: Mapped[int] = mapped_column(Integer, default=0)
    #: What the job is doing now, for a person ("trial 3 of 12: ..."); an Automill extension field.
    stage: Mapped[str | None] = mapped_column(Text, nullable=True)
    partial_failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    result_type: Mapped[str] = mapped_column(
        String(64), default="Empty"
    )  # Model | Dataset | Empty | BatchPredictResult
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    lease_owner: Mapped[str] = mapped_column(String(128), default="")
    lease_expires_at: Mapped[float] = mapped_column(Float, default=0.0)  # unix time
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    seq: Mapped[int] = mapped_column(Integer)
    #: The API key (its name) whose request started the operation; "anonymous" on a server without keys,
    #: "" for operations started by the server itself. Never part of the Operation JSON.
    created_by: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AttemptRow(Base):
    """One attempt at an operation: a worker claimed it and ran it (until it ended, or its worker died).

    ``seconds`` is the attempt's compute so far, from its claim: renewed with each heartbeat and set
    once more when the attempt ends, so a worker killed at any moment leaves at most one heartbeat
    period uncounted. A retried training's budget is what the earlier attempts left; its model's cost
    is the sum over its attempts."""

    __tablename__ = "operation_attempts"
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    started_at: Mapped[float] = mapped_column(Float)  # unix time of the claim
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ApiKeyRow(Base):
    """An API key: a name, a role on one project (or ``*``: all), and a slow salted hash of the secret.

    The secret itself is never stored; ``key_id`` is the public part of the secret that finds the row.
    """

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AuditRow(Base):
    """One mutating or refused API request: who, what, on what, and the answer (never the body or a secret)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_time", "time"), Index("ix_audit_log_project_time", "project", "time"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime)
    key_name: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(128), default="")
    #: The RPC, e.g. CreateModel ("" when the path is no API route).
    method: Mapped[str] = mapped_column(String(64))
    http_method: Mapped[str] = mapped_column(String(8))
    resource: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int] = mapped_column(Integer)
    #: google.rpc code name of the answer: OK, PERMISSION_DENIED, UNAUTHENTICATED, ...
    status: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64), default="")
