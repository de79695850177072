"""The sparsity library: masks beside the weights (`masks`), exact-count selection (`selection`),
the cubic schedule (`schedule`) and ERK densities (`erk`), pure functions wherever they can be.
The pruners that use them are the plugin package `fggp_repro.pruners`, of the same layer.
It may import `foundations` only: no training loop, run, command line or report.
"""
