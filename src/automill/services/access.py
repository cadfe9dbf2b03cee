"""Who may do what: permissions, roles, the caller of a request, and the check.

Roles follow Google's AutoML roles: ``admin`` may do everything (including, outside the API, key
management); ``editor`` every API call; ``viewer`` the get and list calls (operations included);
``predictor`` Predict and GetModel. A key holds one role on one project, or on every project (``*``).

Which permission each RPC needs is declared next to its route (``api/routes.py``); this module only
knows roles as sets of permissions. The check runs before the request touches any row, so a refusal
says the same thing whether the resource exists or not.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from automill.core.errors import PermissionDenied

#: Every permission an API call can need.
PERMISSIONS: frozenset[str] = frozenset(
    {
        "automl.datasets.create",
        "automl.datasets.get",
        "automl.datasets.list",
        "automl.datasets.update",
        "automl.datasets.delete",
        "automl.datasets.import",
        "automl.datasets.export",
        "automl.annotationSpecs.get",
        "automl.annotationSpecs.list",
        "automl.tableSpecs.get",
        "automl.tableSpecs.update",
        "automl.models.create",
        "automl.models.get",
        "automl.models.list",
        "automl.models.update",
        "automl.models.delete",
        "automl.models.deploy",
        "automl.models.undeploy",
        "automl.models.export",
        "automl.models.predict",
        "automl.models.batchPredict",
        "automl.modelEvaluations.get",
        "automl.modelEvaluations.list",
        "automl.operations.get",
        "automl.operations.list",
        "automl.operations.cancel",
        "automl.operations.delete",
        # Automill's upload of files into a bucket folder (api.upload: the console's "upload files").
        "automill.objects.create",
        # Automill's reads of a bucket folder (api.download: a listing, or the folder as one zip): viewers
        # hold them, as they see the examples and models of the project already.
        "automill.objects.list",
        "automill.objects.get",
    }
)
#: Managing keys and reading the audit log happen outside the API (``automill keys``, ``automill audit``,
#: on the database); the permission exists so that the admin role says it.
KEYS_MANAGE = "automill.keys.manage"

ROLES: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS | {KEYS_MANAGE},
    "editor": PERMISSIONS,
    "viewer": frozenset(p for p in PERMISSIONS if p.rsplit(".", 1)[1] in ("get", "list")),
    "predictor": frozenset({"automl.models.predict", "automl.models.get"}),
}
ALL_PROJECTS = "*"


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a key's name, role and project, or the anonymous local user."""

    name: str
    role: str
    project: str
    anonymous: bool = False

    def may(self, permission: str, project: str) -> bool:
        return (self.project in (ALL_PROJECTS, project)) and permission in ROLES.get(self.role, frozenset())


#: The one local user of a server without keys (on a loopback address, or started with --insecure).
ANONYMOUS = Principal(name="anonymous", role="admin", project=ALL_PROJECTS, anonymous=True)

#: The name of the key whose request is being served (new operations record it); "" outside requests.
acting_key: ContextVar[str] = ContextVar("automill_acting_key", default="")


def authorize(principal: Principal, permission: str, project: str, resource: str) -> None:
    """PermissionDenied unless ``principal`` holds ``permission`` on ``project``; the message is the same
    whether ``resource`` exists or not (nothing has been read yet)."""
    if permission not in PERMISSIONS:
        raise PermissionDenied(f"unknown permission {permission!r}")  # a route declared a typo: deny
    if not principal.may(permission, project):
        raise PermissionDenied(f"Permission '{permission}' denied on resource '{resource[:300]}' (or it may not exist)")
