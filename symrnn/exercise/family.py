"""The family of cells an instructor draws exercise variants from.

A family lists the choices for each part of the exercise's network (all optional; the
defaults in ``DEFAULTS``):

    activation   tanh, sigmoid, relu                 h = act(z)
    bias         false, true                         z = W h + U x + b, o = V h + c
    head         softmax, linear, sigmoid            yhat = head(o)
    loss         cross-entropy, squared-error        L^(t) of yhat and y
    gate         none, update, reset                 an update gate (h = u h_prev + (1 - u) a)
                                                     or a reset gate (z = W (r h_prev) + U x)
    notation     goodfellow, d2l, d2l-bptt, cs231n,  the notation profile of the sheets
                 or the path of a profile (.toml)

as keyword arguments, options of ``symrnn exercise`` or a small TOML file with the same
keys (each a list, or one value). Cross-entropy needs a probability head: softmax (the
categorical loss) or sigmoid (the binary one, written 1^T softplus(o) - y^T o); linear
with cross-entropy is not drawn. ``Family.cells()`` lists the valid combinations in a
fixed order; ``Choice.cell()`` builds one as a ``symrnn.Cell`` (SymPy expressions, never
cell text), and ``Choice.upstream()`` the same network with its output o fed into
another network (Problem 3: L^(t) = g^T o).
"""
import itertools
import os
from dataclasses import dataclass, fields
from pathlib import Path

from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Rational, symbols

from ..model.cell import Cell
from ..model.nodes import log_softmax, prev, softmax
from ..ops import functions
from ..render.notation import NotationError, builtin_notations, load_notation

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the backport of setup.cfg
    import tomli as tomllib

__all__ = ["Choice", "Family", "choice_of", "load_family", "make_family", "DEFAULTS", "OPTIONS"]

OPTIONS = {
    "activation": ("tanh", "sigmoid", "relu"),
    "bias": (False, True),
    "head": ("softmax", "linear", "sigmoid"),
    "loss": ("cross-entropy", "squared-error"),
    "gate": ("none", "update", "reset"),
}
DEFAULTS = {
    "activation": ("tanh", "sigmoid", "relu"),
    "bias": (False, True),
    "head": ("softmax", "linear"),
    "loss": ("cross-entropy", "squared-error"),
    "gate": ("none", "update", "reset"),
    "notation": ("goodfellow",),
}
MAX_FILE = 64 * 1024   # a family file is a few lines

# the gate's parameters and variables named in the style of a built-in profile (its
# names of the Elman RNN's matrices: W_hh, W_xh); other profiles keep W_u, U_u, b_u
GATE_SYMBOLS = {
    "d2l": {"W_u": "W_{hu}", "U_u": "W_{xu}", "b_u": "b_{u}",
            "W_r": "W_{hr}", "U_r": "W_{xr}", "b_r": "b_{r}"},
    "d2l-bptt": {"W_u": "W_{uh}", "U_u": "W_{ux}", "b_u": "b_{u}",
                 "W_r": "W_{rh}", "U_r": "W_{rx}", "b_r": "b_{r}"},
    "cs231n": {"W_u": "W_{hu}", "U_u": "W_{xu}", "b_u": "b_{u}",
               "W_r": "W_{hr}", "U_r": "W_{xr}", "b_r": "b_{r}"},
}
WORDS = {
    "head": {"softmax": "a softmax output", "linear": "a linear output",
             "sigmoid": "a sigmoid output"},
    "loss": {"cross-entropy": "the cross-entropy loss", "squared-error": "the squared error"},
    "gate": {"none": "", "update": "an update gate", "reset": "a reset gate"},
}


@dataclass(frozen=True)
class Choice:
    """One cell of a family: a value for each option."""
    activation: str = "tanh"
    bias: bool = False
    head: str = "softmax"
    loss: str = "cross-entropy"
    gate: str = "none"
    notation: str = "goodfellow"

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def is_exercise(self):
        """The network of exercise sheet 08 itself."""
        return self == Choice(notation=self.notation)

    def describe(self):
        """The network in words, for the sheets: "an Elman network with the rectifier as
        activation, biases, a linear output and the squared error"."""
        parts = [f"{functions()[self.activation].words} as activation"]
        if self.gate != "none":
            parts.append(WORDS["gate"][self.gate])
        parts.append("biases" if self.bias else "no biases")
        parts.append(f"{WORDS['head'][self.head]} and {WORDS['loss'][self.loss]}")
        return "a recurrent network with " + ", ".join(parts[:-1]) + " and " + parts[-1]

    def name(self):
        bits = [self.activation, self.head, self.loss] + (["bias"] if self.bias else []) \
            + ([f"{self.gate} gate"] if self.gate != "none" else [])
        return f"RNN ({', '.join(bits)})"

    # -- the cells ---------------------------------------------------------------------
    def _recurrent(self, D, N):
        """(params, equations, h) of the recurrent part."""
        W, U = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N)
        x, h = MatrixSymbol("x", N, 1), MatrixSymbol("h", D, 1)
        z = MatrixSymbol("z", D, 1)
        act = functions()[self.activation]
        params, gate_params, equations = [W, U], [], []
        previous = prev(h)
        if self.gate in ("update", "reset"):
            k = "u" if self.gate == "update" else "r"
            Wg, Ug = MatrixSymbol(f"W_{k}", D, D), MatrixSymbol(f"U_{k}", D, N)
            zg, gate = MatrixSymbol(f"z_{k}", D, 1), MatrixSymbol(k, D, 1)
            gate_params = [Wg, Ug]
            pre = Wg * prev(h) + Ug * x
            if self.bias:
                bg = MatrixSymbol(f"b_{k}", D, 1)
                gate_params.append(bg)
                pre = pre + bg
            equations += [(zg, pre), (gate, functions()["sigmoid"](zg))]
            if self.gate == "reset":
                previous = HadamardProduct(gate, prev(h))
        pre = W * previous + U * x
        if self.bias:
            b = MatrixSymbol("b", D, 1)
            params.append(b)
            pre = pre + b
        equations.append((z, pre))
        if self.gate == "update":
            a = MatrixSymbol("a", D, 1)
            u = MatrixSymbol("u", D, 1)
            equations += [(a, act(z)), (h, HadamardProduct(u, prev(h))
                                        + HadamardProduct(OneMatrix(D, 1) - u, a))]
        else:
            equations.append((h, act(z)))
        return params + gate_params, equations, h, x

    def _sizes(self):
        return symbols("D N M", integer=True, positive=True)

    def _output(self, D, M, h):
        V, o = MatrixSymbol("V", M, D), MatrixSymbol("o", M, 1)
        out = V * h
        params = [V]
        if self.bias:
            c = MatrixSymbol("c", M, 1)
            params.append(c)
            out = out + c
        return params, [(o, out)], o

    def _notation(self):
        table = {"yhat": r"\hat{y}"}
        table.update(GATE_SYMBOLS.get(self.notation, {}))
        return table

    def _made(self, name, params, x, target, h, equations, loss, distributions):
        cell = Cell(name, params=params, inputs=[x], targets=[target], states=[h],
                    equations=equations, loss=loss, notation=self._notation(),
                    targets_are_distributions=distributions)
        cell.notation_kind = "elman"     # a profile's names of the Elman RNN apply
        return cell

    def cell(self):
        """The ``Cell`` of this choice (Problem 2)."""
        D, N, M = self._sizes()
        params, equations, h, x = self._recurrent(D, N)
        head_params, head_equations, o = self._output(D, M, h)
        y = MatrixSymbol("y", M, 1)
        yhat = MatrixSymbol("yhat", M, 1)
        if self.loss == "cross-entropy" and self.head == "softmax":
            head_equations.append((yhat, softmax(o)))
            loss = -y.T * log_softmax(o)
        elif self.loss == "cross-entropy":        # sigmoid: the binary cross-entropy
            head_equations.append((yhat, functions()["sigmoid"](o)))
            loss = OneMatrix(1, M) * functions()["softplus"](o) - y.T * o
        elif self.head == "linear":
            loss = Rational(1, 2) * (o - y).T * (o - y)
        else:
            function = softmax if self.head == "softmax" else functions()["sigmoid"]
            head_equations.append((yhat, function(o)))
            loss = Rational(1, 2) * (yhat - y).T * (yhat - y)
        return self._made(self.name(), params + head_params, x, y, h,
                          equations + head_equations, loss,
                          self.head == "softmax" and self.loss == "cross-entropy")

    def upstream(self):
        """The same network with its output o fed into another network (Problem 3):
        L^(t) = g^T o, g the gradient the other network hands back."""
        D, N, M = self._sizes()
        params, equations, h, x = self._recurrent(D, N)
        head_params, head_equations, o = self._output(D, M, h)
        g = MatrixSymbol("g", M, 1)
        return self._made(f"{self.name()}, output fed into another network",
                          params + head_params, x, g, h, equations + head_equations,
                          g.T * o, False)


def _valid(choice):
    """Cross-entropy needs probabilities: no linear head with it."""
    return not (choice.loss == "cross-entropy" and choice.head == "linear")


@dataclass(frozen=True)
class Family:
    """The choices for each option (tuples, in the order given)."""
    activation: tuple = DEFAULTS["activation"]
    bias: tuple = DEFAULTS["bias"]
    head: tuple = DEFAULTS["head"]
    loss: tuple = DEFAULTS["loss"]
    gate: tuple = DEFAULTS["gate"]
    notation: tuple = DEFAULTS["notation"]

    def cells(self):
        """Every valid ``Choice`` of the family, in a fixed order."""
        names = [f.name for f in fields(self)]
        every = (Choice(**dict(zip(names, values)))
                 for values in itertools.product(*(getattr(self, n) for n in names)))
        out = [c for c in every if _valid(c)]
        if not out:
            raise ValueError("family: no valid cell: cross-entropy needs a softmax or a "
                             "sigmoid head (choose head = softmax or sigmoid, or loss = "
                             "squared-error)")
        return out

    def as_dict(self):
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


def _values(key, given):
    """The choices of option ``key`` from a list, a tuple, one value or a comma list."""
    if isinstance(given, str):
        given = [part.strip() for part in given.split(",")]
    elif isinstance(given, (bool, int)) or not isinstance(given, (list, tuple)):
        given = [given]
    if not given:
        raise ValueError(f"{key}: no value given")
    out = []
    for value in given:
        value = _value(key, value)
        if value not in out:
            out.append(value)
    return tuple(out)


_TRUTH = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _value(key, value):
    if key == "bias":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUTH:
            return _TRUTH[value.lower()]
        raise ValueError(f"bias: {value!r} is not true or false")
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a name, got {value!r}")
    if key == "notation":
        if value not in builtin_notations():
            try:
                load_notation(value)
            except NotationError as e:
                raise ValueError(str(e)) from None
            return os.fspath(value)
        return value
    choices = OPTIONS[key]
    spelled = value.strip().lower().replace("_", "-")
    spelled = {"ce": "cross-entropy", "mse": "squared-error", "crossentropy": "cross-entropy",
               "squared": "squared-error", "no": "none"}.get(spelled, spelled)
    if spelled not in choices:
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    return spelled


def make_family(**options):
    """A ``Family`` from keyword options (None: the default of that option); ValueError
    naming the option otherwise."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"family: unknown option {unknown[0]!r}; the options are "
                         f"{', '.join(DEFAULTS)}")
    values = {k: _values(k, v) for k, v in options.items() if v is not None}
    family = Family(**values)
    family.cells()       # refuse a family without a valid cell now
    return family


def choice_of(data):
    """The ``Choice`` a dict describes (an answer key's "choice"); ValueError naming the
    option that is not one."""
    if not isinstance(data, dict):
        raise ValueError("choice: expected a table of the options")
    missing = sorted(set(DEFAULTS) - set(data))
    if missing:
        raise ValueError(f"choice: the option {missing[0]!r} is missing")
    family = make_family(**{k: [v] for k, v in data.items()})
    return family.cells()[0]


def load_family(path, **overrides):
    """The family of a TOML file (keys as ``make_family``'s options), the options given
    in ``overrides`` (not None) replacing the file's."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE:
            raise ValueError(f"family {path}: larger than {MAX_FILE // 1024} KiB; a family "
                             "file is a few lines")
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"family {path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ValueError(f"family {path}: cannot read it ({e.strerror or e})") from None
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    try:
        return make_family(**data)
    except ValueError as e:
        message = str(e)[len("family: "):] if str(e).startswith("family: ") else str(e)
        raise ValueError(f"family {path}: {message}") from None
