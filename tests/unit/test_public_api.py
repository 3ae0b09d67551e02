"""The public surface: ``switchover.__all__`` is complete, sorted and importable."""

from __future__ import annotations

import switchover


def test_all_is_sorted_and_every_name_exists() -> None:
    assert switchover.__all__ == sorted(switchover.__all__)
    for name in switchover.__all__:
        assert hasattr(switchover, name), name


def test_every_public_name_is_listed() -> None:
    public = {
        name
        for name, value in vars(switchover).items()
        if not name.startswith("_") and not getattr(value, "__name__", "").startswith("switchover.")
    }
    assert public <= set(switchover.__all__), public - set(switchover.__all__)


def test_errors_share_one_root_with_codes() -> None:
    errors = [
        switchover.ValidationError,
        switchover.NotFoundError,
        switchover.ConflictError,
        switchover.AuthError,
        switchover.ForbiddenError,
        switchover.LockHeldError,
        switchover.StoreError,
    ]
    codes = {e.code for e in errors}
    assert len(codes) == len(errors)
    assert all(issubclass(e, switchover.SwitchoverError) for e in errors)
