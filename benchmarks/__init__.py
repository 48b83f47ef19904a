"""Benchmark of her2er_dash against R on synthetic cohorts of 10k, 100k and 1M patients.

``python -m benchmarks.run`` (``make bench``) times the work each dashboard page triggers, runs the
same computations in R when ``Rscript`` is present, checks that both give the same numbers, and
writes ``benchmarks/results/latest.json``. See ``benchmarks/README.md``.
"""
