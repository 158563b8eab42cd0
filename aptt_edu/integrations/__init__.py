"""Adapters to training frameworks; each imports its framework lazily."""
