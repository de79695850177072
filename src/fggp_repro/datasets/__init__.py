"""Datasets: one module each, holding a loader and its options (a `DataOptions` subclass), named
by the `_target_` of a YAML file in conf/data/. The modules import torch only when loading, so
the command line checks a dataset's options without paying for it."""
