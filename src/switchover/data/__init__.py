"""Data migration of agent configs (seed 003) and the legacy sunset (seed 004 M5)."""
