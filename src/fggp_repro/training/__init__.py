"""Training: device-resident data (`data`), the training state (`state`), how one step runs
(`steps`: eager, compiled or a captured CUDA graph), the epoch loop (`trainer`), checkpoints,
stop signals, devices, and FLOP counting. The backbones and datasets it trains are the plugin
packages `fggp_repro.models` and `fggp_repro.datasets`, of the same layer. It may import
`foundations`, `sparsity` and `pruners`: no run, command line or report, and no Hydra.
"""
