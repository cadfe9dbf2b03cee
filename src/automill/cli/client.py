"""The client side of the CLI: command groups that talk to a running server over the REST API.

Registered in ``cli/main.py``. Each group lives in ``cli/commands/``; the shared parts are
``cli/config.py`` (settings), ``cli/api.py`` (HTTP), ``cli/output.py`` (table/json/yaml),
``cli/progress.py`` (waiting for operations) and ``cli/common.py`` (options, names, errors).
"""

from __future__ import annotations

from automill.cli.commands.config import config_app as config
from automill.cli.commands.datasets import annotation_specs, datasets
from automill.cli.commands.evaluations import evaluations
from automill.cli.commands.models import models
from automill.cli.commands.operations import operations
from automill.cli.commands.predict import predict

__all__ = ["annotation_specs", "config", "datasets", "evaluations", "models", "operations", "predict"]
