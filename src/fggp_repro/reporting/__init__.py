"""Reports on finished runs: records gathered into a table (`collect`), the paper table's cells,
ranks and significance (`ranking`), tables in Markdown, LaTeX and CSV (`tables`), and figures of
the tables (`table_figures`: accuracy, critical differences) and of the runs (`run_figures`:
layer densities, training curves). It reads records, never trains: it may import
`foundations`, `sparsity`, `pruners` and `runs`, not `training`, and no Hydra.
"""
