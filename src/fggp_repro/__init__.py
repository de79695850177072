"""fggp-repro: regenerate, check and extend the experiments of FGGP (arXiv 2411.05500).

The names most users need outside the CLI are importable from here (loaded on first use, so the
command line answers bad input without importing torch):

    from fggp_repro import FGGP, GMP, Dense, MaskSet
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "MaskSet": "fggp_repro.sparsity.masks",
    "Pruner": "fggp_repro.pruners",
    "Dense": "fggp_repro.pruners",
    "GMP": "fggp_repro.pruners",
    "FGGP": "fggp_repro.pruners",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fggp_repro' has no attribute '{name}'")
