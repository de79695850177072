"""`python -m fggp_repro.cli`: the same as `fggp-repro`."""

from fggp_repro.cli.main import main

main()
