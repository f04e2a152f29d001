"""Benchmark harness: a grid of multi-task variants and their single-task baselines, trained
with one protocol over several seeds, profiled (parameters, FLOPs, CPU latency, training
throughput) and reported with Δm (Maninis et al. CVPR 2019; Vandenhende et al. TPAMI 2021).

- ``grid``: the grid YAML, its expansion into runs, single-task baseline configs;
- ``prepare``: data-preparation hooks a grid runs before training (synthetic data);
- ``results``: the append-only JSON-lines results file that makes a bench resumable;
- ``profile``: parameter count, FLOPs per image, CPU latency;
- ``runner``: train every run in-process, resume interrupted runs, ``mtdense bench``;
- ``report``: mean ± std over seeds, both Δm variants, Markdown + JSON; ``plot``: the PNG.
"""
