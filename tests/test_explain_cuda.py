"""The CUDA path gives the CPU path's maps (runs only where a CUDA GPU is present)."""

from __future__ import annotations

import pytest
import torch

from app.explain import Explainer
from tests.mc_models import BUILDERS, TARGETS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

METHODS = ["gradcam", "gradcam++", "smoothgradcam++", "reciprocam", "scorecam"]


@pytest.mark.parametrize("arch", ["resnet18", "trunk"])
@pytest.mark.parametrize("method", METHODS)
def test_cuda_maps_equal_cpu_maps(arch: str, method: str) -> None:
    size = 64 if arch == "resnet18" else 12
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    results = {}
    for device in ("cpu", "cuda"):
        model = BUILDERS[arch](4)
        explainer = Explainer(
            model,
            method,
            passes=4,
            device=device,
            target_layer=TARGETS[arch],
            seed=0,
            **({"batch_size": 64} if method == "scorecam" else {}),
        )
        result = explainer(x)
        assert result.maps.device.type == device  # results stay on the device
        results[device] = result.cpu()
    torch.testing.assert_close(results["cuda"].maps, results["cpu"].maps, rtol=1e-3, atol=2e-3)
    torch.testing.assert_close(results["cuda"].probs, results["cpu"].probs, rtol=1e-3, atol=1e-4)
