"""Multi-stage systems from the seed papers."""
