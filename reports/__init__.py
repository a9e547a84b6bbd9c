"""Reports: tables, paper references, claims, figures, regression checks and the stage cache.

Works on the tidy records of :mod:`gbench.core.records` with pandas and matplotlib only; no
module of this package imports torch.
"""
