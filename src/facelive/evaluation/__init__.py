"""Evaluation: ISO/IEC 30107-3 metrics, the scoring harness behind ``facelive evaluate``, plots."""

from facelive.evaluation.evaluate import (
    comparison_table,
    evaluate_scores,
    run_evaluation,
    score_samples,
)
from facelive.evaluation.metrics import (
    apcer,
    auc,
    bpcer,
    compute_metrics,
    eer,
    eer_threshold,
    threshold_for_apcer,
    threshold_for_bpcer,
)

__all__ = ["apcer", "auc", "bpcer", "comparison_table", "compute_metrics", "eer", "eer_threshold",
           "evaluate_scores", "run_evaluation", "score_samples", "threshold_for_apcer",
           "threshold_for_bpcer"]
