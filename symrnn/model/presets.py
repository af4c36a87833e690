"""Ready-made cells."""
from sympy import MatrixSymbol, Rational, symbols

from .cell import Cell
from ..ops import activations
from .nodes import log_softmax, prev, softmax

# the Elman network's choices: the operations of symrnn.ops offered as activations, and
# none (the identity)
ACTIVATIONS = {**activations(), "identity": lambda z: z}


def _softmax_ce(o, y):
    yhat = MatrixSymbol("yhat", *o.shape)
    return [(yhat, softmax(o))], -y.T * log_softmax(o)


def _mse(o, y):
    return [], Rational(1, 2) * (o - y).T * (o - y)


def _upstream(o, g):
    return [], g.T * o


# output head: (equations after o, loss L^(t)) from o^(t) and the target
OUTPUTS = {"softmax_ce": _softmax_ce, "mse": _mse, "upstream": _upstream}


def _choice(argument, value, table):
    if value not in table:
        raise ValueError(f"{argument}: unknown value {value!r}; choose one of "
                         + ", ".join(map(repr, table)))
    return table[value]


class ElmanRNN(Cell):
    """The Elman network: z = W h^(t-1) + U x (+ b), h = act(z), o = V h (+ c).

    Parameters
    ----------
    activation : str
        ``"tanh"`` (default), ``"sigmoid"``, ``"relu"`` or ``"identity"``: the
        operations of the registry offered as activations, and none.
    output : str
        The output head and loss: ``"softmax_ce"`` (default; L^(t) = -y^T log
        softmax(o)), ``"mse"`` (L^(t) = 1/2 (o - y)^T (o - y)) or ``"upstream"``
        (L^(t) = g^T o, the target g being dL/do^(t) of a network on top).
    bias : bool
        Add the biases b (D) and c (M).

    Raises
    ------
    ValueError
        An unknown choice, naming the argument and listing the valid values.
    """

    def __init__(self, activation="tanh", output="softmax_ce", bias=False):
        act = _choice("activation", activation, ACTIVATIONS)
        head = _choice("output", output, OUTPUTS)
        if not isinstance(bias, bool):
            raise ValueError(f"bias: must be True or False, got {bias!r}")
        D, N, M = symbols("D N M", integer=True, positive=True)
        W, U, V = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N), MatrixSymbol("V", M, D)
        x = MatrixSymbol("x", N, 1)
        y = MatrixSymbol("g" if output == "upstream" else "y", M, 1)
        z, h, o = MatrixSymbol("z", D, 1), MatrixSymbol("h", D, 1), MatrixSymbol("o", M, 1)
        params = [W, U, V]
        pre, out = W * prev(h) + U * x, V * h
        if bias:
            b, c = MatrixSymbol("b", D, 1), MatrixSymbol("c", M, 1)
            params += [b, c]
            pre, out = pre + b, out + c
        head_equations, loss = head(o, y)
        self.activation, self.output, self.bias = activation, output, bias
        super().__init__(
            f"Elman RNN ({activation}, {output}{', bias' if bias else ''})",
            params=params, inputs=[x], targets=[y], states=[h],
            equations=[(z, pre), (h, act(z)), (o, out)] + head_equations,
            loss=loss, notation={"yhat": r"\hat{y}"},
            targets_are_distributions=output == "softmax_ce")
