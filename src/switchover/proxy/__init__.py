"""``switchover proxy``: an HTTP reverse proxy that cuts a webhook service over from
legacy to candidate by the migration, checks signatures, falls back, shadows, and
records every request (see docs/proxy.md)."""

from switchover.proxy.app import ProxyApp
from switchover.proxy.config import KeySpec, ProxyConfig, Route, Signature, load_yaml, parse

__all__ = ["KeySpec", "ProxyApp", "ProxyConfig", "Route", "Signature", "load_yaml", "parse"]
