"""Percentage bucketing, compatible with Unleash's ``flexibleRollout``.

``bucket(group, key) = murmur3_32(f"{group}:{key}", seed=0) % 100 + 1``, a number
from 1 to 100; a key is in a rollout of ``p`` percent when ``bucket <= p``. The group
is the migration's name unless it was created with another (``--group``, Unleash's
``groupId``, so callers stay on the side Unleash put them), so every feature of one
migration puts a caller on the same side, and growing the percentage never moves a
caller back. ``docs/bucketing.md``
has test vectors and a JavaScript version.
"""

from __future__ import annotations

import mmh3

_hash = mmh3.hash


def bucket(group: str, key: str) -> int:
    """The caller's bucket, 1..100."""
    return _hash(f"{group}:{key}", 0, False) % 100 + 1


def in_rollout(group: str, key: str, percentage: int) -> bool:
    return bucket(group, key) <= percentage
