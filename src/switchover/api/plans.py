"""Plans, verdicts, manual control and rollback levels over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role
from switchover.errors import ValidationError

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Operator = Annotated[Principal, Depends(requires(Role.OPERATOR))]
ACTIONS = ("promote", "pause", "resume", "approve", "abort")


class ApplyPlan(BaseModel):
    source: str = Field(..., description="The plan in YAML (docs/plans.md).")
    source_name: str = Field("plan.yaml", description="A file name, shown in errors.")
    replace: bool = Field(False, description="Replace an active plan.")
    reason: str | None = None


class PlanAction(BaseModel):
    reason: str | None = None


class Rollback(BaseModel):
    level: str = Field(..., description="tenant, partial or total (seed 003 §7).")
    tenant_id: str | None = None
    target_percentage: int | str | None = None
    reason: str | None = None


def router(app: App) -> APIRouter:
    api = APIRouter(tags=["plans"])
    plans = app.plans

    def refreshed(request: Request) -> None:
        request.app.state.snapshot.refresh()

    @api.get("/v1/plans")
    def list_plans(_: Viewer) -> list[dict[str, Any]]:
        now = app.clock.now()
        return [s.to_dict(now=now) for s in plans.list()]

    @api.get("/v1/migrations/{name}/plan")
    def show_plan(name: str, _: Viewer, verdicts: int = 5) -> dict[str, Any]:
        data = plans.get(name).to_dict(now=app.clock.now())
        data["verdicts"] = [
            v.to_dict(detail=False) for v in plans.verdicts(name, limit=max(1, min(verdicts, 100)))
        ]
        return data

    @api.put("/v1/migrations/{name}/plan")
    def apply_plan(name: str, body: ApplyPlan, who: Operator) -> dict[str, Any]:
        fn = plans.replace_plan if body.replace else plans.apply
        state = fn(name, body.source, body.source_name, actor=who.name, reason=body.reason)
        return state.to_dict(now=app.clock.now())

    @api.post("/v1/migrations/{name}/plan/{action}")
    def plan_action(
        name: str, action: str, request: Request, who: Operator, body: PlanAction | None = None
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ValidationError(
                f"unknown plan action {action!r}; use one of {', '.join(ACTIONS)}", field="action"
            )
        body = body or PlanAction()
        state = getattr(plans, action)(name, actor=who.name, reason=body.reason)
        refreshed(request)
        return state.to_dict(now=app.clock.now())

    @api.get("/v1/migrations/{name}/verdicts")
    def verdicts(
        name: str, _: Viewer, limit: int = 20, detail: bool = True
    ) -> list[dict[str, Any]]:
        return [v.to_dict(detail=detail) for v in plans.verdicts(name, limit=limit)]

    @api.post("/v1/migrations/{name}/rollback")
    def rollback(name: str, body: Rollback, request: Request, who: Operator) -> dict[str, Any]:
        result = plans.rollback(
            name,
            body.level,
            actor=who.name,
            reason=body.reason,
            tenant_id=body.tenant_id,
            target_percentage=body.target_percentage,
        )
        refreshed(request)
        return result

    return api
