"""Per-tenant calls and errors, so a tenant whose calls fail stands out."""

from __future__ import annotations

import asyncio

import switchover
from switchover.core.rollup import MAX_TENANTS, OTHER_TENANTS, Rollup
from switchover.rollout.service import RolloutService
from switchover.store.repository import Store


def test_window_counts_calls_and_errors_per_tenant(db_url: str) -> None:
    store = Store.from_url(db_url)
    svc = RolloutService(store)
    svc.create("voice_v2", features=["stt"], actor="t")
    svc.set_feature("voice_v2", "stt", True, actor="t")
    svc.set_percentage("voice_v2", 100, actor="t")

    async def legacy(tenant: str) -> str:
        return "ok"

    async def candidate(tenant: str) -> str:
        if tenant == "acme":
            raise RuntimeError("acme's prompts break the candidate")
        return "ok"

    async def calls(m: switchover.MigrationHandle) -> None:
        for i in range(30):
            tenant = ("acme", "globex", "initech")[i % 3]
            ctx = {"user_id": str(i), "tenant_id": tenant}
            await m.route("stt", ctx, tenant, legacy=legacy, candidate=candidate)

    with switchover.connect(db_url, background=False) as client:
        m = client.migration("voice_v2")
        asyncio.run(calls(m))
        client.recorder.flush()
        tenants = m.window()["sides"]["candidate"]["tenants"]
    assert tenants["acme"] == {"calls": 10, "errors": 10, "error_rate": 1.0}
    assert tenants["globex"] == {"calls": 10, "errors": 0, "error_rate": 0.0}
    store.dispose()


def test_tenants_past_the_bound_are_summed_not_lost() -> None:
    a, b = Rollup(), Rollup()
    for i in range(MAX_TENANTS + 50):
        a.add(1.0, i % 2 == 0, None, False, None, tenant=f"t{i}")
    b.add(1.0, False, "X", False, None, tenant="t-new")
    a.merge(b)
    assert len(a.tenants) == MAX_TENANTS + 1
    assert sum(c for c, _ in a.tenants.values()) == a.count == MAX_TENANTS + 51
    assert sum(e for _, e in a.tenants.values()) == a.errors
    assert a.tenants[OTHER_TENANTS][0] == 51
    assert Rollup.from_dict(a.to_dict()) == a
