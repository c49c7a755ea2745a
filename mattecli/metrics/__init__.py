"""The four matting metrics (SAD, MSE, Gradient, Connectivity) exactly as the DIM MATLAB code, plus MAD.

``compute_metrics`` scores in-memory arrays (training validation, the demo);
``evaluate_items`` scores many files over all cores (``mattecli eval``).
"""
from mattecli.metrics.compute import CONVENTIONS, METRIC_NAMES, REGIONS, check_metric_names, compute_metrics
from mattecli.metrics.evaluate import EvalReport, ItemResult, evaluate_items, score_item
from mattecli.metrics.pairing import EvalItem, Pairing, pair_dataset, pair_folders

__all__ = ["CONVENTIONS", "METRIC_NAMES", "REGIONS", "check_metric_names", "compute_metrics",
           "EvalItem", "EvalReport", "ItemResult", "Pairing", "evaluate_items", "pair_dataset",
           "pair_folders", "score_item"]
