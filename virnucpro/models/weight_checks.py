"""Refusing weights no trained model has: NaN/inf values, negative BatchNorm variances.

Such a file loads and runs, and every score comes out `nan` and every call `others` with exit
status 0, so it is caught at load time. The classifier is small and checked whole; the encoders
only on their normalisation parameters (1-D, a few kB each), which keeps an 11 GB load as fast.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from virnucpro.errors import ModelLoadError

_SHOWN = 4


def check_finite(what: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise ModelLoadError naming the floating-point tensors that hold NaN or inf."""
    bad = [name for name, tensor in tensors.items()
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        shown = ", ".join(sorted(bad)[:_SHOWN]) + (f" ... ({len(bad)} in all)" if len(bad) > _SHOWN else "")
        raise ModelLoadError(f"{what} has NaN or infinite weights ({shown}); the file is damaged or not a trained model")


def check_norms_finite(what: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """`check_finite` on the normalisation parameters only: the encoders' cheap sanity check."""
    check_finite(what, {name: t for name, t in tensors.items() if "norm" in name.lower() and t.dim() == 1})


def check_batchnorm_variance(what: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """A BatchNorm running variance is a variance: a negative one makes every output NaN."""
    bad = [name for name, tensor in tensors.items() if name.endswith("running_var") and bool((tensor < 0).any())]
    if bad:
        raise ModelLoadError(f"{what} has a negative BatchNorm running variance ({', '.join(sorted(bad))})")
