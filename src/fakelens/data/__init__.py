"""Datasets: format readers (`fakelens.data.formats`), group-aware splits, synthetic data, torch datasets.

Kept empty on purpose: `fakelens data inspect --help` must not pay for torch, which `dataset.py` imports.
"""
