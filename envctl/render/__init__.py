"""Presentation: plans, progress and results for people (rich) and machines (JSON)."""
