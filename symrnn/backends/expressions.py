"""SymPy matrix expressions of a derivation as closures over an array namespace.

Each expression is compiled once into ``fn(env) -> value``; ``env`` is a dict
that holds the parameters (as 2-D matrices, by their names), the constants,
``"_xp"`` (the array library's namespace, see ``namespaces.py``), ``"_sizes"``
(the size symbols' values), ``"_count"`` (steps times sequences) and the
per-step values the leaves read (the caller's ``leaf`` function decides where
a leaf comes from). Every entry of env that is not a parameter has a name
starting with ``_`` or a tuple key: a cell's names never start with ``_``, so
a parameter named ``xp`` or ``count`` cannot hide one.

Values are in row layout, as in the generated NumPy code: a per-step column
vector of size r is an array (..., r), one row per step and sequence, so the
same closure serves one step (B, r) and all steps at once (T, B, r). The kind
of an expression, fixed when it is compiled, says how its value is held:

    F  a fixed matrix (parameters only): a 2-D array (rows, cols)
    C  a per-step column (r x 1): (..., r)
    R  a per-step row (1 x c): (..., c)
    S  a per-step 1 x 1: (..., 1)
    O  a per-step matrix (an outer product C R): a list of pairs (c, r), each
       (..., r) or a fixed 1-D vector; only ever summed over the steps

A fixed matrix that takes part in per-step arithmetic is converted to a row
(a column (r, 1) -> (r,), which broadcasts against (..., r)). Fixed
sub-expressions (transposes, products of parameters, their rows) are
registered as constants: the program computes them once per call, not once
per step.
"""
from sympy import (HadamardPower, HadamardProduct, Identity, MatAdd, MatMul, MatPow,
                   MatrixSymbol, OneMatrix, Transpose, ZeroMatrix)

from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import Elementwise


def is_per_step(expr):
    return bool(expr.atoms(StepVar))


def kind(expr):
    """F, C, R, S or O (see the module's docstring)."""
    if not is_per_step(expr):
        return "F"
    rows, cols = expr.shape
    if rows == 1 and cols == 1:
        return "S"
    return "C" if cols == 1 else "R" if rows == 1 else "O"


def _dim(d):
    """The value of one dimension: a number, or a size looked up at run time."""
    if d.is_Integer:
        n = int(d)
        return lambda env: n
    name = str(d)
    return lambda env: env["_sizes"][name]


def _number(c):
    if not c.is_number:
        raise NotImplementedError(f"the coefficient {c} is not a number")
    return float(c)


def _exponent(expr):
    """The exponent of a matrix power, a positive integer (the parser makes no other)."""
    n = expr.exp
    if not (n.is_Integer and n >= 1):
        raise NotImplementedError(f"the matrix power {expr}")
    return int(n)


def _sum(fns, signs):
    """The closure of sum(sign * fn); a positive term goes first when there is one."""
    terms = sorted(zip(signs, fns), key=lambda sf: -sf[0])
    (s0, first), rest = terms[0], terms[1:]
    if s0 > 0 and len(rest) == 1:  # the common cases without a loop
        s1, second = rest[0]
        if s1 > 0:
            return lambda env: first(env) + second(env)
        return lambda env: first(env) - second(env)

    def add(env):
        v = first(env) if s0 > 0 else -first(env)
        for s, f in rest:
            v = v + f(env) if s > 0 else v - f(env)
        return v
    return add


def _product(fns):
    if len(fns) == 2:
        first, second = fns
        return lambda env: first(env) * second(env)
    first, rest = fns[0], fns[1:]

    def times(env):
        v = first(env)
        for f in rest:
            v = v * f(env)
        return v
    return times


def _split_sign(term):
    if term.is_MatMul:
        coeff, factors = term.as_coeff_matrices()
        if coeff == -1:
            return -1, factors[0] if len(factors) == 1 else MatMul(*factors)
    return 1, term


class Compiler:
    """``compile(expr) -> fn(env)``; ``leaf(node)`` gives the closure of a
    StepVar or Adjoint. Constants go to ``self.constants`` (key -> (name in
    env, closure)), shared with other compilers of the same program through
    ``constants``; the program evaluates them in order at the start of a call."""

    def __init__(self, leaf, constants=None):
        self.leaf = leaf
        self.constants = {} if constants is None else constants

    def compile(self, expr):
        return self._compile(expr)[1]

    # -- constants -------------------------------------------------------------
    def _constant(self, key, build):
        """A closure reading a value computed once per call (built by ``build``);
        ``constants`` maps ``key`` to (the value's name in env, its closure)."""
        entry = self.constants.get(key)
        if entry is None:
            fn = build()  # first: the constants it reads are registered before it
            entry = self.constants[key] = (f"_k{len(self.constants)}", fn)
        name = entry[0]
        return lambda env: env[name]

    def _fixed(self, expr):
        """The closure of a fixed expression (kind F): a parameter is read
        directly, anything else is a constant."""
        if isinstance(expr, MatrixSymbol):
            name = expr.name
            return lambda env: env[name]
        return self._constant(("F", expr), lambda: self._build_fixed(expr))

    def _rows(self, expr):
        """A fixed column (r, 1) or row (1, c) as the 1-D row (r,) or (c,)."""
        def build():
            m = self._fixed(expr)
            if expr.shape[1] == 1:
                return lambda env: m(env)[:, 0]
            if expr.shape[0] == 1:
                return lambda env: m(env)[0]
            raise NotImplementedError(f"the fixed matrix {expr} in a per-step sum")
        return self._constant(("rows", expr), build)

    # -- dispatch --------------------------------------------------------------
    def _compile(self, expr):
        """(kind, closure) of ``expr``."""
        if isinstance(expr, SumOverTime):  # of a fixed term too: T B times the term
            return "F", self._sum_over_time(expr)
        k = kind(expr)
        if k == "F":
            return "F", self._fixed(expr)
        if isinstance(expr, (StepVar, Adjoint)):
            return k, self.leaf(expr)
        if isinstance(expr, MatAdd):
            return k, self._add(expr, k)
        if isinstance(expr, HadamardProduct):
            return k, self._per_step_args(expr.args, k, _product)
        if isinstance(expr, HadamardPower):
            return k, self._power(expr)
        if isinstance(expr, Transpose):
            return self._transpose(expr)
        if isinstance(expr, MatMul):
            return self._matmul(expr)
        if isinstance(expr, Elementwise):
            return k, self._elementwise(expr, self._per_step_arg(expr.arg))
        if isinstance(expr, MatPow) and k == "S":  # a 1 x 1 value: its power entry by entry
            base, n = self._per_step_arg(expr.base), _exponent(expr)
            return k, lambda env: base(env) ** n
        raise NotImplementedError(f"{type(expr).__name__} in {expr}")

    def _per_step_arg(self, arg):
        """A per-step closure for ``arg``; a fixed one as a row, which broadcasts."""
        k, fn = self._compile(arg)
        if k == "O":
            raise NotImplementedError(f"a per-step matrix {arg} in an element-wise operation")
        return self._rows(arg) if k == "F" else fn

    def _per_step_args(self, args, k, combine):
        if k == "O":
            raise NotImplementedError(f"an element-wise product of per-step matrices {args}")
        return combine([self._per_step_arg(a) for a in args])

    # -- fixed expressions (evaluated once per call) ----------------------------
    def _build_fixed(self, expr):
        if isinstance(expr, MatrixSymbol):
            name = expr.name
            return lambda env: env[name]
        if isinstance(expr, (OneMatrix, ZeroMatrix, Identity)):
            rows, cols = (_dim(d) for d in expr.shape)
            make = {OneMatrix: "ones", ZeroMatrix: "zeros", Identity: "eye"}[type(expr)]
            if make == "eye":
                return lambda env: env["_xp"].eye(rows(env))
            return lambda env: getattr(env["_xp"], make)((rows(env), cols(env)))
        parts = [self._fixed(a) for a in expr.args if getattr(a, "is_Matrix", False)]
        if isinstance(expr, MatAdd):
            signs, terms = zip(*map(_split_sign, expr.args))
            return _sum([self._fixed(a) for a in terms], signs)
        if isinstance(expr, HadamardProduct):
            return _product(parts)
        if isinstance(expr, HadamardPower):
            p = _number(expr.exp)
            return lambda env: parts[0](env) ** p
        if isinstance(expr, Transpose):
            return lambda env: parts[0](env).T
        if isinstance(expr, MatPow):  # W @ W @ ...: n - 1 matrix products
            base, n = parts[0], _exponent(expr)

            def power(env):
                b = v = base(env)
                for _ in range(n - 1):
                    v = v @ b
                return v
            return power
        if isinstance(expr, MatMul):
            coeff, factors = expr.as_coeff_matrices()
            fns, c = [self._fixed(f) for f in factors], _number(coeff)

            def matmul(env):
                v = fns[0](env)
                for f in fns[1:]:
                    v = v @ f(env)
                return v if c == 1 else c * v
            return matmul
        if isinstance(expr, Elementwise):  # a column (r, 1): row layout is its transpose
            kernel = type(expr).kernels["array"]
            return lambda env: kernel(env["_xp"], parts[0](env).T).T
        raise NotImplementedError(f"{type(expr).__name__} of parameters in {expr}")

    # -- per-step expressions -----------------------------------------------------
    def _add(self, expr, k):
        signs, terms = zip(*map(_split_sign, expr.args))
        if k == "O":
            fns = [self._compile(a) for a in terms]
            if any(tk != "O" for tk, _ in fns):
                raise NotImplementedError(f"a per-step matrix plus a fixed one in {expr}")

            def pairs(env):
                out = []
                for s, (_, f) in zip(signs, fns):
                    out += f(env) if s > 0 else [(-c, r) for c, r in f(env)]
                return out
            return pairs
        fns = [self._per_step_arg(a) for a in terms]
        fused = [i for i, (sign, f) in enumerate(zip(signs, fns))
                 if sign > 0 and hasattr(f, "matmul")]
        if fused and len(fns) > 1:  # one product W c added to the rest: one fused call
            i = fused[0]
            rest = _sum(fns[:i] + fns[i + 1:], signs[:i] + signs[i + 1:])
            c, mT = fns[i].matmul
            return lambda env: env["_xp"].addmm(rest(env), c(env), mT(env))
        return _sum(fns, signs)

    def _power(self, expr):
        base, p = self._per_step_arg(expr.base), _number(expr.exp)
        if p == 2:
            return lambda env: _square(base(env))
        return lambda env: base(env) ** p

    def _transpose(self, expr):
        k, fn = self._compile(expr.arg)
        if k == "O":
            return "O", lambda env: [(r, c) for c, r in fn(env)]
        return {"C": "R", "R": "C", "S": "S"}[k], fn

    def _elementwise(self, expr, arg):
        kernel = type(expr).kernels["array"]
        return lambda env: kernel(env["_xp"], arg(env))

    def _matmul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        c = _number(coeff)
        k, fn = self._factor(factors[0])
        for f in factors[1:]:
            k, fn = self._times(k, fn, *self._factor(f))
        if c == 1:
            return k[0], fn
        if k[0] == "O":
            return "O", lambda env: [(c * a, b) for a, b in fn(env)]
        return k[0], lambda env: c * fn(env)

    def _factor(self, f):
        """((kind, shape), closure); a fixed factor's closure is the pair
        (matrix, transpose), both constants."""
        k, fn = self._compile(f)
        if k == "F":
            return ("F", f), (fn, self._fixed(f.T), f)
        return (k, f.shape), fn

    def _times(self, k1, f1, k2, f2):
        """The product of two factors, by their kinds (shapes decide the result)."""
        a, b = k1[0], k2[0]
        s1 = k1[1].shape if a == "F" else k1[1]
        s2 = k2[1].shape if b == "F" else k2[1]
        shape = (s1[0], s2[1])
        per_step = "F" not in (a, b) or a != b
        rk = (("S" if shape == (1, 1) else "C" if shape[1] == 1 else "R" if shape[0] == 1
               else "O") if per_step else "F")
        out = (rk, shape)
        if a == "F" and b == "F":
            m1, m2 = f1[0], f2[0]
            return ("F", k1[1] * k2[1]), (lambda env: m1(env) @ m2(env),
                                          self._fixed((k1[1] * k2[1]).T), k1[1] * k2[1])
        if a == "F":
            fixed = k1[1]
            if b == "C":       # W c: each row c @ W.T
                mT = f1[1]
                fn = lambda env: f2(env) @ mT(env)  # noqa: E731
                fn.matmul = (f2, mT)  # for a sum to fuse it (addmm)
                return out, fn
            if b in ("S", "R"):  # a fixed column times a 1x1 or a row
                col = self._rows(fixed)
                if rk == "O":
                    return out, lambda env: [(col(env), f2(env))]
                return out, lambda env: col(env) * f2(env)
            if b == "O":       # a fixed row times a per-step matrix is a row
                mT = f1[1]
                return out, _pairs(rk, lambda env: [(c @ mT(env), r) for c, r in f2(env)])
        if b == "F":
            fixed = k2[1]
            if a == "R":       # r W
                m = f2[0]
                return out, lambda env: f1(env) @ m(env)
            if a in ("S", "C"):  # a 1x1 or a column times a fixed row
                row = self._rows(fixed)
                if rk == "O":
                    return out, lambda env: [(f1(env), row(env))]
                return out, lambda env: f1(env) * row(env)
            if a == "O":       # a per-step matrix times a fixed column is a column
                m = f2[0]
                return out, _pairs(rk, lambda env: [(c, r @ m(env)) for c, r in f1(env)])
        rowsum = _rowsum
        rule = a + b
        if rule == "RC":
            return out, lambda env: rowsum(env, f1(env) * f2(env))
        if rule in ("CS", "SR", "SS"):
            return out, lambda env: f1(env) * f2(env)
        if rule == "CR":
            return out, lambda env: [(f1(env), f2(env))]
        if rule == "OC":
            return out, lambda env: _sum_pairs([c * rowsum(env, r * f2(env))
                                                for c, r in f1(env)])
        if rule == "RO":
            return out, lambda env: _sum_pairs([rowsum(env, f1(env) * c) * r
                                                for c, r in f2(env)])
        if rule == "OO":
            return out, lambda env: [(c1 * rowsum(env, r1 * c2), r2)
                                     for c1, r1 in f1(env) for c2, r2 in f2(env)]
        raise NotImplementedError(f"the product of a {a} and a {b} factor")

    # -- sums over the steps ---------------------------------------------------------
    def _sum_over_time(self, expr):
        """The sum over every step and sequence of the term: a matrix (rows, cols)."""
        k, fn = self._compile(expr.term)
        if k == "F":
            return lambda env: env["_count"] * fn(env)
        if k == "O":
            return lambda env: _sum_pairs([_outer_sum(env, c, r) for c, r in fn(env)])
        if k == "R":
            return lambda env: _flat(fn(env)).sum(0)[None, :]
        return lambda env: _flat(fn(env)).sum(0)[:, None]


def _pairs(k, pairs):
    """The closure of a product of kind ``k`` computed as pairs (c, r): kept as
    pairs for a per-step matrix (O), else summed: one side of each pair is then
    (..., 1), and c * r broadcasts to the column, row or 1 x 1."""
    if k == "O":
        return pairs
    return lambda env: _sum_pairs([c * r for c, r in pairs(env)])


def _square(v):
    return v * v


def _rowsum(env, v):
    return env["_xp"].rowsum(v)


def _flat(v):
    return v.reshape(-1, v.shape[-1])


def _sum_pairs(values):
    v = values[0]
    for w in values[1:]:
        v = v + w
    return v


def _outer_sum(env, c, r):
    """sum over the rows k of c_k r_k^T; a 1-D side is the same for every row."""
    if c.ndim > 1 and r.ndim > 1:
        return _flat(c).T @ _flat(r)
    if c.ndim > 1:
        c = _flat(c).sum(0)
    elif r.ndim > 1:
        r = _flat(r).sum(0)
    else:
        c = env["_count"] * c
    return c[:, None] * r[None, :]
