"""The MC Dropout explanation engine.

from app.explain import Explainer
ex = Explainer(model, method="gradcam++", passes=10, mc=True)
r = ex(x)   # r.maps (T, h, w); r.mean, r.std, r.cv (h, w); r.probs (T, K); r.class_idx
"""

from app.explain.engine import METHODS, Explainer, default_target_layer, resolve_device
from app.explain.errors import ExplainerError
from app.explain.result import Explanation

__all__ = [
    "METHODS",
    "Explainer",
    "ExplainerError",
    "Explanation",
    "default_target_layer",
    "resolve_device",
]
