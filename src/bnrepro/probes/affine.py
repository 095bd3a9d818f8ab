"""The normalisation layers' learned scale and shift (gamma, beta) as training moves them: the article's view is
that they let the network undo the normalisation where it needs to (`probe.affine=true`)."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def affine_values(model: torch.nn.Module, unit: int, qs: list[float]) -> dict[str, float]:
    """gamma/<layer>/unit (unit #`unit`), gamma/<layer>/mean and gamma/<layer>/p<q> over the layer's units; beta/...
    likewise. Layers are numbered as model.layers() numbers them; layers without a scale and shift give nothing."""
    out: dict[str, float] = {}
    for i, layer in enumerate(model.layers(), start=1):
        norm = getattr(layer, "norm", None)
        if getattr(norm, "weight", None) is None:
            continue
        for name, param in (("gamma", norm.weight), ("beta", norm.bias)):
            v = param.detach().float().cpu().numpy()
            out[f"{name}/layer{i}/unit"] = float(v[unit])
            out[f"{name}/layer{i}/mean"] = float(v.mean())
            for q, value in zip(qs, np.percentile(v, qs)):
                out[f"{name}/layer{i}/p{q:g}"] = float(value)
    return out
