"""Gated cells in the notation of Goodfellow et al., section 10.10.

sigma is the logistic sigmoid, (.) the element-wise product, and every
pre-activation is W_k h^(t-1) + U_k x^(t) + b_k. Both cells end with
o^(t) = V h^(t), yhat^(t) = softmax(o^(t)) and the cross-entropy
L^(t) = -y^(t)T log softmax(o^(t)). tests/test_gated.py writes both cells as
text for ``symrnn.parse_cell`` and checks that the text gives these equations.

Against PyTorch: ``LSTM`` is the step of ``torch.nn.LSTM`` under other names
(torch's i, f, g, o, c are g, f, a, q, s here; W_h* is W_*, W_i* is U_*, and
torch's two biases b_i* + b_h* are one b_* here). ``GRU`` is not the variant of
``torch.nn.GRU``: here the reset gate multiplies h^(t-1) before W
(W (r * h^(t-1))), in torch it multiplies W_hn h^(t-1) + b_hn; and torch's update
gate z keeps the old state as u does here. tests/test_gated.py writes both torch
cells as text and checks them.
"""
from sympy import HadamardProduct as hadamard, MatrixSymbol, OneMatrix, symbols

from .cell import Cell
from .nodes import log_softmax, prev, sigmoid, softmax, tanh


def _sizes():
    return symbols("D N M", integer=True, positive=True)


def _affine(D, N, suffix, h_in, x):
    """W_k h + U_k x + b_k, with its three parameters."""
    W = MatrixSymbol(f"W{suffix}", D, D)
    U = MatrixSymbol(f"U{suffix}", D, N)
    b = MatrixSymbol(f"b{suffix}", D, 1)
    return [W, U, b], W * h_in + U * x + b


def _softmax_head(h, D, M):
    V = MatrixSymbol("V", M, D)
    o, yhat, y = MatrixSymbol("o", M, 1), MatrixSymbol("yhat", M, 1), MatrixSymbol("y", M, 1)
    return V, y, [(o, V * h), (yhat, softmax(o))], -y.T * log_softmax(o)


class LSTM(Cell):
    """Long short-term memory with forget, input and output gates::

        f = sigma(W_f h^(t-1) + U_f x + b_f)    forget gate
        g = sigma(W_g h^(t-1) + U_g x + b_g)    input gate
        q = sigma(W_q h^(t-1) + U_q x + b_q)    output gate
        a = tanh(W h^(t-1) + U x + b)           candidate
        s = f (.) s^(t-1) + g (.) a             state (the cell)
        h = tanh(s) (.) q

    then o = V h, yhat = softmax(o) and the cross-entropy loss. Parameters W_f U_f
    b_f W_g U_g b_g W_q U_q b_q W U b V; states h, s (initial states h0, s0).
    """

    def __init__(self):
        D, N, M = _sizes()
        x = MatrixSymbol("x", N, 1)
        h, s = MatrixSymbol("h", D, 1), MatrixSymbol("s", D, 1)
        f, g, q, a = (MatrixSymbol(n, D, 1) for n in ("f", "g", "q", "a"))
        params, equations = [], []
        for gate, suffix, act in ((f, "_f", sigmoid), (g, "_g", sigmoid), (q, "_q", sigmoid),
                                  (a, "", tanh)):
            p, pre = _affine(D, N, suffix, prev(h), x)
            params += p
            equations.append((gate, act(pre)))
        V, y, head, loss = _softmax_head(h, D, M)
        equations += [(s, hadamard(f, prev(s)) + hadamard(g, a)),
                      (h, hadamard(tanh(s), q))] + head
        super().__init__("LSTM", params=params + [V], inputs=[x], targets=[y], states=[h, s],
                         equations=equations, loss=loss, notation={"yhat": r"\hat{y}"},
                         targets_are_distributions=True)


class GRU(Cell):
    """Gated recurrent unit with update and reset gates::

        u = sigma(W_u h^(t-1) + U_u x + b_u)          update gate
        r = sigma(W_r h^(t-1) + U_r x + b_r)          reset gate
        a = tanh(W (r (.) h^(t-1)) + U x + b)        candidate
        h = u (.) h^(t-1) + (1 - u) (.) a

    then o = V h, yhat = softmax(o) and the cross-entropy loss. Parameters W_u U_u
    b_u W_r U_r b_r W U b V; state h (initial state h0).
    """

    def __init__(self):
        D, N, M = _sizes()
        x, h = MatrixSymbol("x", N, 1), MatrixSymbol("h", D, 1)
        u, r, a = (MatrixSymbol(n, D, 1) for n in ("u", "r", "a"))
        pu, pre_u = _affine(D, N, "_u", prev(h), x)
        pr, pre_r = _affine(D, N, "_r", prev(h), x)
        pa, pre_a = _affine(D, N, "", hadamard(r, prev(h)), x)
        V, y, head, loss = _softmax_head(h, D, M)
        equations = [(u, sigmoid(pre_u)), (r, sigmoid(pre_r)), (a, tanh(pre_a)),
                     (h, hadamard(u, prev(h)) + hadamard(OneMatrix(D, 1) - u, a))] + head
        super().__init__("GRU", params=pu + pr + pa + [V], inputs=[x], targets=[y], states=[h],
                         equations=equations, loss=loss, notation={"yhat": r"\hat{y}"},
                         targets_are_distributions=True)
