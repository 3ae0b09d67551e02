"""Notifications for the rollout controller: targets behind one small Protocol.

The controller tells a :class:`Notifier` about a phase change, a hold, a rollback, when an
approval is needed and on completion; the notifier POSTs Slack-compatible, HMAC-signed
JSON to each webhook a plan subscribed, off-thread and retried
(:mod:`~switchover.control.notify.webhook`). Every kind of target fits :class:`Target`
(``send(notification)``, ``close()``) and is made by name with :func:`make_target`:

=========== ================================================================
``noop``    :class:`NoopTarget`: tells nobody
``memory``  :class:`MemoryTarget`: keeps the notifications in a list
``webhook`` :class:`WebhookTarget`: one webhook, through a :class:`Notifier`
=========== ================================================================

The body format is in :mod:`~switchover.control.notify.slack`, the signature scheme that
receivers check in :mod:`~switchover.control.notify.signature`. :class:`MemoryNotifier`
stands in for :class:`Notifier` in the simulator and tests.
"""

from switchover.control.notify.base import (
    EVENTS,
    SEVERITIES,
    Notification,
    NotifierLike,
    Target,
)
from switchover.control.notify.memory import MemoryNotifier, MemoryTarget
from switchover.control.notify.noop import NoopTarget
from switchover.control.notify.registry import KINDS, make_target
from switchover.control.notify.signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)
from switchover.control.notify.slack import EMOJI, MAX_FIELDS, MAX_REASONS, TITLES, slack_payload
from switchover.control.notify.webhook import USER_AGENT, Notifier, Webhook, WebhookTarget

__all__ = [
    "DELIVERY_HEADER",
    "EMOJI",
    "EVENTS",
    "EVENT_HEADER",
    "KINDS",
    "MAX_FIELDS",
    "MAX_REASONS",
    "SEVERITIES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TITLES",
    "USER_AGENT",
    "MemoryNotifier",
    "MemoryTarget",
    "NoopTarget",
    "Notification",
    "Notifier",
    "NotifierLike",
    "Target",
    "Webhook",
    "WebhookTarget",
    "make_target",
    "sign",
    "slack_payload",
    "verify",
]
