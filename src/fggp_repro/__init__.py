"""fggp-repro: regenerate, check and extend the experiments of FGGP (arXiv 2411.05500)."""

__version__ = "0.1.0"
