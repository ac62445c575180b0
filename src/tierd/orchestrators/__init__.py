"""Orchestrators: one per level, with correlation, deadlines, supervision and routing."""
