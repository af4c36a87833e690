"""symrnn: derive, typeset and compile BPTT gradients of recurrent cells."""
from .derivation import Derivation, derive
from .model import (GRU, LSTM, Cell, ElmanRNN, log_softmax, parse_cell, prev, relu, sigmoid,
                    softmax, tanh)

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "Cell", "Derivation", "ElmanRNN", "derive", "log_softmax", "parse_cell",
           "prev", "relu", "sigmoid", "softmax", "tanh"]
