"""The readable NumPy backend's printer (a placeholder until written)."""
from .emit import NumPyPrinter


class ReadablePrinter(NumPyPrinter):
    pass
