"""Evaluating explanations with Poppi et al.'s metrics: Average Drop, Coherency, Complexity, ADCC.

from app.evaluate import score_explanation, aggregate
s = score_explanation(explainer, x)   # x (1, 3, H, W) normalised
s.average_drop, s.coherency, s.complexity, s.adcc, s.flags
summary = aggregate(scores)           # both dataset-level ADCCs, labelled
"""

from app.evaluate.metrics import adcc, average_drop, coherency, complexity, pearson
from app.evaluate.scoring import (
    FLAGS,
    ExplanationScore,
    aggregate,
    explanation_input,
    score_explanation,
    score_explanations,
    score_maps,
)

__all__ = [
    "FLAGS",
    "ExplanationScore",
    "adcc",
    "aggregate",
    "average_drop",
    "coherency",
    "complexity",
    "explanation_input",
    "pearson",
    "score_explanation",
    "score_explanations",
    "score_maps",
]
