"""``symrnn check`` from Python: ``check(cell_or_derivation, seed=0, T=None, sizes=None,
batch=None)`` returns the report that the command prints (``report.passed``,
``report.rows``, ``report.table()``). The checks are in ``symrnn.checking.report``."""
from .checking.report import CheckReport, Row, check, random_seed

__all__ = ["CheckReport", "Row", "check", "random_seed"]
