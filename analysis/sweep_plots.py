"""Plots of a sweep's tables (placeholder until the sweep issue lands fully)."""
from __future__ import annotations


def plot_sweep(out_dir) -> list:
    return []
