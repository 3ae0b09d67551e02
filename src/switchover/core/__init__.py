"""Pure domain: models, bucketing, decisions. No I/O and no clock of its own."""
