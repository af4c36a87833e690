from .cell import Cell
from .nodes import log_softmax, prev, relu, sigmoid, softmax, tanh
from .presets import ACTIVATIONS, OUTPUTS, ElmanRNN
from .gated import GRU, LSTM
from .parse import parse_cell
