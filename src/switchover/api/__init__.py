"""HTTP API (FastAPI). Thin: parse, authorise, call a service, render."""

from switchover.api.app import create_app

__all__ = ["create_app"]
