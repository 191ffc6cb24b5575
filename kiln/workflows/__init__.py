"""Workflows: the lifecycle steps that use kiln's components (train, evaluate, predict, export)."""
