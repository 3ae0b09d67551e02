"""Request bodies. Values are checked by the services, which name the field and the fix."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool, StrictInt

MAX_CONTEXTS = 10_000


class Change(BaseModel):
    reason: str | None = Field(None, description="Why; written to the audit log.")
    expected_version: int | None = Field(
        None, description="Refuse the change with 409 unless the migration is at this version."
    )


class CreateMigration(BaseModel):
    name: str
    features: list[str] = []
    stickiness: str = "user_id"
    tenant_key: str = "tenant_id"
    description: str = ""
    legacy_label: str = "legacy"
    candidate_label: str = "candidate"
    group: str | None = Field(
        None,
        description="The bucketing group, e.g. an Unleash groupId so callers keep their "
        "side; default: the migration's name.",
    )
    reason: str | None = None


class SetPercentage(Change):
    percentage: StrictInt | str = Field(..., description="A whole number from 0 to 100.")


class SetFeature(Change):
    enabled: StrictBool
    percentage: StrictInt | str | None = Field(
        None,
        description="The feature's own percentage, a cap on the migration's (0-100): its "
        "calls go to the candidate for min(this, the migration's) % of callers, the same "
        "buckets. 'follow' drops the cap; left out, it stays as it is.",
    )


class SetTenant(Change):
    override: str = Field(
        ...,
        description="'allow' (force candidate), 'deny' (force legacy) or 'clear' "
        "(follow the percentage).",
    )


class Resume(Change):
    plan: StrictBool = Field(
        False,
        description="Also let a paused or rolled-back plan advance again (the CLI's "
        "'resume --plan'). Without it only the master switch comes back on.",
    )


class RegisterTenants(BaseModel):
    tenants: list[str]
    reason: str | None = None


class DecideRequest(BaseModel):
    migration: str
    feature: str | None = None
    contexts: list[dict[str, Any]] = Field(
        ..., description=f"One context per call to decide, at most {MAX_CONTEXTS}."
    )


class CreateToken(BaseModel):
    name: str
    role: str = Field(..., description="viewer, worker, operator or admin.")
    replace: StrictBool = Field(
        False, description="Replace a token of this name (its old value stops working)."
    )
