"""One command per change, one handler each, shared by the CLI, the API and the dashboard.

::

    entry point ──parse──► Command (frozen) ──handle(app, cmd)──► Outcome
                                     └──preview(app, cmd)──► Preview (the dashboard's
                                                             confirmation, nothing written)
"""

from switchover.commands.handlers import AUDIT_DATA, AUDIT_TOKENS, handle, tenant_override
from switchover.commands.model import (
    COMMANDS,
    PLAN_VERBS,
    ROLLBACK_LEVELS,
    TENANT_CHOICES,
    ApplyPlan,
    Command,
    CreateMigration,
    CreateToken,
    Kill,
    MigrationCommand,
    PlanAction,
    RegisterTenants,
    Restore,
    Resume,
    RevokeToken,
    Rollback,
    SetFeature,
    SetPercentage,
    SetTenant,
)
from switchover.commands.outcome import Change, Outcome
from switchover.commands.preview import Preview, preview

__all__ = [
    "AUDIT_DATA",
    "AUDIT_TOKENS",
    "COMMANDS",
    "PLAN_VERBS",
    "ROLLBACK_LEVELS",
    "TENANT_CHOICES",
    "ApplyPlan",
    "Change",
    "Command",
    "CreateMigration",
    "CreateToken",
    "Kill",
    "MigrationCommand",
    "Outcome",
    "PlanAction",
    "Preview",
    "RegisterTenants",
    "Restore",
    "Resume",
    "RevokeToken",
    "Rollback",
    "SetFeature",
    "SetPercentage",
    "SetTenant",
    "handle",
    "preview",
    "tenant_override",
]
