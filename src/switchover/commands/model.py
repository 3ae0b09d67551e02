"""The changes an operator or the controller can make, one frozen value each.

The CLI, the HTTP API and the dashboard parse their input into one of these and hand
it to :func:`switchover.commands.handle`; none of them changes anything another way,
so a verb means the same wherever it is used. Field names are the names errors refer
to (``target_percentage``): each entry point words them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

TenantChoice = Literal["allow", "deny", "clear"]
PlanVerb = Literal["promote", "pause", "resume", "approve", "abort"]
RollbackLevelName = Literal["tenant", "partial", "total", "data"]

PLAN_VERBS: tuple[PlanVerb, ...] = ("promote", "pause", "resume", "approve", "abort")
ROLLBACK_LEVELS: tuple[RollbackLevelName, ...] = ("tenant", "partial", "total", "data")
TENANT_CHOICES: tuple[TenantChoice, ...] = ("allow", "deny", "clear")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Who asks and why; every change is audited with both."""

    actor: str
    reason: str = ""

    verb: ClassVar[str] = "command"


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationCommand(Command):
    """A change to one migration. ``expected_version`` refuses it if someone was faster."""

    migration: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateMigration(Command):
    verb: ClassVar[str] = "create"
    migration: str
    features: tuple[str, ...] = ()
    stickiness: str = "user_id"
    tenant_key: str = "tenant_id"
    description: str = ""
    legacy_label: str = "legacy"
    candidate_label: str = "candidate"
    group: str | None = None
    """The bucketing group (Unleash's ``groupId``); None: the migration's name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPercentage(MigrationCommand):
    verb: ClassVar[str] = "set_percentage"
    percentage: object


@dataclass(frozen=True, slots=True, kw_only=True)
class SetFeature(MigrationCommand):
    verb: ClassVar[str] = "set_feature"
    feature: str
    enabled: bool
    percentage: object = None
    """The feature's own percentage, a cap on the migration's (0-100); ``"follow"`` drops
    the cap; None leaves it as it is."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTenant(MigrationCommand):
    """``allow`` forces the candidate, ``deny`` legacy, ``clear`` follows the percentage."""

    verb: ClassVar[str] = "set_tenant"
    tenant: str
    override: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterTenants(MigrationCommand):
    verb: ClassVar[str] = "register_tenants"
    tenants: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Kill(MigrationCommand):
    """Master switch off: every call to legacy at once. An active plan stops too."""

    verb: ClassVar[str] = "kill"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(MigrationCommand):
    """Master switch back on. With ``plan``, a paused or rolled-back plan advances again."""

    verb: ClassVar[str] = "resume"
    plan: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanAction(MigrationCommand):
    """promote, pause, resume (the plan only), approve or abort the migration's plan."""

    verb: ClassVar[str] = "plan_action"
    action: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyPlan(MigrationCommand):
    verb: ClassVar[str] = "apply_plan"
    source: str
    source_name: str = "plan.yaml"
    replace: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback(MigrationCommand):
    """Seed 003's levels. ``data``: a total rollback, then the backup restored.

    ``source`` is the agent database for a data rollback; ``None`` is the one the
    server was configured with (HTTP callers cannot name another).
    """

    verb: ClassVar[str] = "rollback"
    level: str
    tenant_id: str | None = None
    target_percentage: object = None
    backup_id: str | None = None
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Restore(Command):
    """Put a data backup back, verified before and after; traffic is not touched.

    With ``run_id`` (``data migrate --abandon RUN``): that unfinished data-migration run
    is undone, its own backup restored and the run marked abandoned in one transaction;
    ``backup_id`` is then the run's and may be left empty.
    """

    verb: ClassVar[str] = "restore"
    backup_id: str
    source: str | None = field(default=None, compare=False)
    run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateToken(Command):
    """``replace``: a token of that name is replaced (the old value stops working)."""

    verb: ClassVar[str] = "create_token"
    name: str
    role: str = "viewer"
    replace: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeToken(Command):
    verb: ClassVar[str] = "revoke_token"
    name: str


COMMANDS: tuple[type[Command], ...] = (
    CreateMigration,
    SetPercentage,
    SetFeature,
    SetTenant,
    RegisterTenants,
    Kill,
    Resume,
    PlanAction,
    ApplyPlan,
    Rollback,
    Restore,
    CreateToken,
    RevokeToken,
)
