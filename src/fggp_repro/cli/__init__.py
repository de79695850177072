"""The command line, the one place Hydra is used: `fggp-repro` (`main`) with its argument checks
(`arguments`), composing a config into a RunSpec (`config`), planning jobs and reading their
status (`jobs`), the planned sweep (`sweep`), time estimates (`estimate`), and
`fggp-repro-table` (`table`). It may import every other layer.
"""

PROG = "fggp-repro"
