"""Helpers the test tiers share (on the path through pytest's ``pythonpath``)."""
