"""The study layer's analysis: runs (local run folders, offline W&B folders, the W&B API) →
per-seed aggregates, tables (CSV, Markdown, LaTeX), Welch's t-tests and figures.
``Result_Evaluations.py`` is its command line (``results.cli``)."""
