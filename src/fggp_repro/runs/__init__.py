"""One run from a RunSpec to its record: the rules between settings (`validation`), the run's
identity (`identity`), the experiment itself (`experiment`), and the files a run directory holds
(`records`). The trackers it reports to are the plugin package `fggp_repro.loggers`, of the
same layer. It may import every layer below it (foundations, sparsity, pruners, training,
models, datasets): no command line or report, and no Hydra.
"""
