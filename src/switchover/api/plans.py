"""Plans, verdicts, manual control and rollback levels over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StrictBool

from switchover import commands
from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.commands import model as cmd
from switchover.core.access import Role

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Operator = Annotated[Principal, Depends(requires(Role.OPERATOR))]


class ApplyPlan(BaseModel):
    source: str = Field(..., description="The plan in YAML (docs/plans.md).")
    source_name: str = Field("plan.yaml", description="A file name, shown in errors.")
    replace: StrictBool = Field(False, description="Replace an active plan.")
    reason: str | None = None


class PlanAction(BaseModel):
    reason: str | None = None


class Rollback(BaseModel):
    level: str = Field(
        ...,
        description="tenant (tenant_id onto legacy), partial (down to target_percentage), "
        "total (0 %, master switch off) or data (total, then backup_id restored into the "
        "server's agent database) (seed 003 §7).",
    )
    tenant_id: str | None = None
    target_percentage: int | str | None = None
    backup_id: str | None = Field(None, description="With level data: the backup to restore.")
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
    def apply_plan(name: str, body: ApplyPlan, request: Request, who: Operator) -> dict[str, Any]:
        outcome = commands.handle(
            app,
            cmd.ApplyPlan(
                migration=name,
                source=body.source,
                source_name=body.source_name,
                replace=body.replace,
                actor=who.name,
                reason=body.reason or "",
            ),
        )
        refreshed(request)
        return _plan_answer(outcome)

    @api.post("/v1/migrations/{name}/plan/{action}")
    def plan_action(
        name: str, action: str, request: Request, who: Operator, body: PlanAction | None = None
    ) -> dict[str, Any]:
        """promote, pause, resume (the plan only: the master switch must be on), approve,
        abort."""
        body = body or PlanAction()
        outcome = commands.handle(
            app,
            cmd.PlanAction(migration=name, action=action, actor=who.name, reason=body.reason or ""),
        )
        refreshed(request)
        return _plan_answer(outcome)

    @api.get("/v1/migrations/{name}/verdicts")
    def verdicts(
        name: str, _: Viewer, limit: int = 20, detail: bool = True
    ) -> list[dict[str, Any]]:
        return [v.to_dict(detail=detail) for v in plans.verdicts(name, limit=limit)]

    @api.post("/v1/migrations/{name}/rollback")
    def rollback(name: str, body: Rollback, request: Request, who: Operator) -> dict[str, Any]:
        outcome = commands.handle(
            app,
            cmd.Rollback(
                migration=name,
                level=body.level,
                tenant_id=body.tenant_id,
                target_percentage=body.target_percentage,
                backup_id=body.backup_id,
                actor=who.name,
                reason=body.reason or "",
            ),
        )
        refreshed(request)
        return {
            "level": body.level,
            "migration": outcome.migration.to_dict() if outcome.migration else None,
            "plan": outcome.plan.to_dict(now=app.clock.now()) if outcome.plan else None,
            "tenant": outcome.data.get("tenant"),
            "message": outcome.message,
            "changes": [c.to_dict() for c in outcome.changes],
            **{k: v for k, v in outcome.data.items() if k in ("backup", "restored")},
        }

    def _plan_answer(outcome: commands.Outcome) -> dict[str, Any]:
        assert outcome.plan is not None
        return {
            **outcome.plan.to_dict(now=app.clock.now()),
            "message": outcome.message,
            "changes": [c.to_dict() for c in outcome.changes],
        }

    return api
