"""Retrieval over an index, prompts, model backends, grounded conversations."""
