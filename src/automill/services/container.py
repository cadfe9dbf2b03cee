"""The services container: one per process, built from Settings.

The container imports the services and hands each itself; a service names ``Services`` only in
annotations (``if TYPE_CHECKING:`` imports), so no service imports this module at run time.
"""

from __future__ import annotations

from collections.abc import Callable

from automill.core.net import is_loopback
from automill.services.datasets import DatasetService
from automill.services.deployment import DeploymentService
from automill.services.keys import Authenticator
from automill.services.models import ModelService
from automill.services.operations import OperationService
from automill.services.predictions import PredictionService
from automill.serving.cache import ModelCache
from automill.settings import Settings
from automill.store.blobs import BlobStore
from automill.store.db import Database
from automill.store.media import MediaStore


class Services:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_url)
        self.blobs = BlobStore(settings.data_dir, settings.buckets)
        self.media = MediaStore(settings.data_dir)
        self.serving = ModelCache(
            batch_wait_s=settings.predict_batch_wait_ms / 1000, max_batch=settings.predict_max_batch
        )
        self.datasets = DatasetService(self)
        self.models = ModelService(self)
        self.deployment = DeploymentService(self)
        self.operations = OperationService(self)
        self.predictions = PredictionService(self)
        #: Requests without a key are the anonymous admin only while no key exists, and only on a
        #: loopback address (or with --insecure).
        self.auth = Authenticator(self.db, open_when_keyless=is_loopback(settings.host) or settings.insecure)


def services_factory(settings: Settings) -> Callable[[], Services]:
    """A picklable-enough factory for job processes (they are forked, so closures are fine)."""

    def make() -> Services:
        import automill.services.handlers  # noqa: F401 - registers job handlers

        return Services(settings)

    return make
