"""A recurrent cell given by the equations of one time step."""
import keyword
import math
import sys
from collections import Counter

from sympy import Float, Integer, MatrixSymbol, Rational, Symbol, ZeroMatrix

from .. import plugins
from ..display import Shown
from .nodes import Constant, Prev, constant_values

# names the generated code uses for itself: none a cell can take, since every
# one of them starts with "_" (see symrnn/codegen/passes/name.py)
CODE_NAMES = frozenset()


def plain_name(name):
    """Whether ``name`` can name a value: an ASCII identifier, not a keyword, not
    starting with '_' (Python reads identifiers in NFKC form, so that ``ℌ`` and
    ``H`` would be one name: non-ASCII names are refused rather than folded)."""
    return (isinstance(name, str) and name.isascii() and name.isidentifier()
            and not name.startswith("_") and not keyword.iskeyword(name))


_FLOAT_MAX_BITS = sys.float_info.max_exp       # 1024: 2**1024 overflows a float
_FLOAT_MIN_BITS = sys.float_info.min_exp - 1   # -1022: below, a float loses digits


def bad_coefficient(expr):
    """The first number in ``expr`` that generated code could not hold as a
    float (an overflow, or a nonzero number that would round to 0), or None;
    named constants count by their values (2e300 * big, big = 1e300)."""
    values = constant_values(expr)
    if values:
        expr = expr.xreplace(values)
    for n in expr.atoms(Rational, Float):
        if n == 0:
            continue
        if isinstance(n, Float):
            if not math.isfinite(float(n)):
                return n
            continue
        bits = math.log2(abs(n.p)) - math.log2(n.q)
        if not _FLOAT_MIN_BITS <= bits < _FLOAT_MAX_BITS:
            return n
    return None


def check_coefficients(expr, where):
    """Raise ValueError naming ``where`` if ``expr`` holds a number beyond float range."""
    n = bad_coefficient(expr)
    if n is not None:
        text = str(n) if len(str(n)) <= 40 else f"about 2**{round(math.log2(abs(n.p)) - math.log2(n.q))}"
        raise ValueError(f"{where}: the coefficient {text} is beyond the range of a float "
                         "(about 1e-308 to 1e308)")


def generated_names(names, params, states):
    """The names the generated functions' API derives from the cell's names, each
    mapped to the name it comes from: the initial state ``h0`` of a state ``h``
    (a keyword argument, and a key of the gradients)."""
    return {f"{s}0": s for s in states}


class Cell(Shown):
    """The equations of one step of a recurrent network, as data.

    :func:`~symrnn.parse_cell` builds one from text; the presets
    (:class:`~symrnn.ElmanRNN`, :class:`~symrnn.LSTM`, :class:`~symrnn.GRU`) are cells.
    Built directly, every name is a SymPy ``MatrixSymbol``, ``*`` between matrix
    expressions is the matrix product and ``HadamardProduct`` the entry-wise one.

    Parameters
    ----------
    name : str
        The cell's name, for the sheet and the generated code.
    params : list
        Shared parameters, copied per step when unrolled.
    inputs : list
        Per-step inputs, x^(t).
    targets : list
        Per-step targets, y^(t) (or the upstream gradient g^(t)).
    states : list
        Variables carried to the next step; ``prev(h)`` is h^(t-1).
    equations : list
        ``(lhs, rhs)`` pairs in the order they are computed.
    loss : sympy.MatrixExpr
        The 1x1 loss L^(t) of one step; the loss of a sequence is the sum over t.
    notation : dict, optional
        How to typeset names: ``{"yhat": r"\\hat{y}"}``.
    targets_are_distributions : bool
        Integer labels are accepted for the targets (one-hot rows of them).
    constants : list
        The named constants the equations use: symbols in the derivation, numbers
        in the generated code.
    fixed : list
        ``(lhs, rhs)`` pairs of named matrices (or rows) computed once from the
        parameters and the named matrices before them, such as ``Ab = A - A.T``;
        the equations of a step read them as parameters.

    Raises
    ------
    ValueError
        A name, a shape or a coefficient the text syntax would refuse too.
    """
    _shown_as = "cell"

    def __init__(self, name, *, params, inputs, targets, states, equations, loss,
                 notation=None, targets_are_distributions=False, constants=(), fixed=()):
        if not isinstance(name, str):
            raise ValueError(f"name: expected a string, got {type(name).__name__}")
        self.name = name
        self.params = tuple(params)
        self.inputs = tuple(inputs)
        self.targets = tuple(targets)
        self.states = tuple(states)
        self.constants = tuple(constants)
        self.fixed = tuple((lhs, rhs) for lhs, rhs in fixed)
        self.loss_var = MatrixSymbol("L", 1, 1)
        self.equations = tuple((lhs, rhs) for lhs, rhs in equations) + ((self.loss_var, loss),)
        # how to typeset a name: {"yhat": r"\hat{y}"}; bold is added by the printer
        self.notation = dict(notation or {})
        # targets are class distributions: integer labels are accepted as one-hot
        if not isinstance(targets_are_distributions, bool):
            raise ValueError("targets_are_distributions: expected True or False, got "
                             f"{targets_are_distributions!r}")
        self.targets_are_distributions = targets_are_distributions
        self._check()

    @property
    def variables(self):
        return tuple(lhs for lhs, _ in self.equations)

    @property
    def fixed_values(self):
        """The named matrices computed once (the left-hand sides of ``fixed``)."""
        return tuple(lhs for lhs, _ in self.fixed)

    @property
    def sizes(self):
        """The size symbols (D, N, M, ...) in order of first appearance."""
        seen = []
        for sym in self.params + self.inputs + self.targets + self.variables:
            for dim in sym.shape:
                for s in sorted(dim.free_symbols, key=str):
                    if s not in seen:
                        seen.append(s)
        return tuple(seen)

    def param(self, name):
        return next(p for p in self.params if p.name == name)

    def _check(self):
        known = set(self.params) | set(self.inputs) | set(self.targets)
        for group, symbols in (("params", self.params), ("inputs", self.inputs),
                               ("targets", self.targets), ("states", self.states)):
            for sym in symbols:
                if not isinstance(sym, MatrixSymbol):
                    raise ValueError(f"{group}: {sym!r} is not a MatrixSymbol")
        for c in self.constants:
            if not isinstance(c, Constant):
                raise ValueError(f"constants: {c!r} is not a Constant")
            if not plain_name(c.name):
                raise ValueError(f"constants: {c.name!r} is not a usable name (an ASCII "
                                 "identifier not starting with '_')")
            check_coefficients(c.value, f"constants: {c.name}")
        names = [s.name for s in self.params + self.inputs + self.targets + self.variables
                 + self.constants + self.fixed_values]
        duplicated = sorted(n for n, k in Counter(names).items() if k > 1)
        if duplicated:
            raise ValueError(f"equations: names used twice: {', '.join(duplicated)}")
        for sym in self.params + self.inputs + self.targets + self.variables + self.fixed_values:
            if not plain_name(sym.name):
                raise ValueError(f"equations: {sym.name!r} is not a usable name "
                                 "(an ASCII identifier not starting with '_')")
            for dim in sym.shape:
                if not (isinstance(dim, Symbol) or isinstance(dim, Integer) and dim >= 1):
                    raise ValueError(f"equations: {sym.name} has the size {dim}; a size is a "
                                     "Symbol or a positive integer")
        generated = generated_names(names, [p.name for p in self.params],
                                    [s.name for s in self.states])
        sizes = {str(s) for s in self.sizes}
        for size in sizes:
            if not plain_name(size) or size in ("T", "t") or size in CODE_NAMES:
                raise ValueError(f"sizes: {size!r} is not a usable size name (an ASCII "
                                 "identifier not starting with '_', not T, t or a name the "
                                 "generated code uses)")
        for n in names:
            if n in generated or n in CODE_NAMES or n in sizes:
                why = (f"the generated code derives it from {generated[n]!r}" if n in generated
                       else "it is a size" if n in sizes else "the generated code uses it")
                raise ValueError(f"equations: the name {n!r} is taken ({why}); choose another name")
        for sym in self.inputs + self.targets + self.variables:
            if sym.shape[1] != 1:
                raise ValueError(f"equations: {sym.name} must be a column vector, "
                                 f"has shape {sym.shape}")
        for state in self.states:
            if state not in self.variables:
                raise ValueError(f"states: {state} has no equation")
        readable = set(self.params)
        for lhs, rhs in self.fixed:
            if not isinstance(lhs, MatrixSymbol) or rhs.shape != lhs.shape:
                raise ValueError(f"fixed: {lhs} must be a MatrixSymbol of the shape of its "
                                 "right-hand side")
            check_coefficients(rhs, f"fixed: {lhs}")
            if rhs.atoms(Constant) - set(self.constants):
                raise ValueError(f"fixed: {lhs} uses a constant that is not in constants")
            others = rhs.atoms(MatrixSymbol) - readable
            if others or rhs.atoms(Prev):
                what = sorted(map(str, others))[0] if others else "prev(...)"
                raise ValueError(f"fixed: {lhs} reads {what}; a named matrix reads only "
                                 "parameters and the named matrices before it")
            readable.add(lhs)
        known |= set(self.fixed_values)
        for lhs, rhs in self.equations:
            if not isinstance(lhs, MatrixSymbol):
                raise ValueError(f"equations: left-hand side {lhs} is not a MatrixSymbol")
            check_coefficients(rhs, f"equations: {lhs}")
            undeclared = rhs.atoms(Constant) - set(self.constants)
            if undeclared:
                raise ValueError(f"equations: {lhs} uses the constant "
                                 f"{sorted(undeclared, key=str)[0]} that is not in constants")
            if rhs.shape != lhs.shape:
                raise ValueError(f"equations: {lhs} has shape {lhs.shape} but its "
                                 f"right-hand side has shape {rhs.shape}")
            for p in rhs.atoms(Prev):
                if p.state not in self.states:
                    raise ValueError(f"equations: prev({p.state}) but {p.state} is not a state")
            outside_prev = rhs.xreplace({p: ZeroMatrix(*p.shape) for p in rhs.atoms(Prev)})
            free = outside_prev.atoms(MatrixSymbol) - known
            if free:
                raise ValueError(f"equations: {lhs} uses {', '.join(sorted(map(str, free)))} "
                                 "before it is defined")
            known.add(lhs)

    def __repr__(self):
        return f"<Cell {self.name}: " + "; ".join(f"{l} = {r}" for l, r in self.equations) + ">"

    # displays: the printers live in symrnn.render, registered in symrnn.plugins
    def _repr_latex_(self):
        """The equations of one step, for a notebook."""
        return plugins.call("cell.notebook", self)

    def __str__(self):
        return plugins.call("cell.text", self)
