"""Expression rewrites for the text: the slide's diag form, 1^T y = 1, flat products.

Each is a SymPy transformation of the engine's expressions; the sheet prints
the expression before and after, so every step it shows is one the code made.
"""
from sympy import HadamardProduct, Identity, MatAdd, MatMul, OneMatrix, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..model.nodes import Adjoint, StepVar

__all__ = ["as_diag", "collect_diagonals", "flatten_products", "unit_sum_targets",
           "unit_sum_facts"]


def flatten_products(expr):
    """A (B C) -> A B C: matrix products are associative; SymPy keeps the nesting."""
    if not getattr(expr, "args", None):
        return expr
    args = [flatten_products(a) for a in expr.args]
    if isinstance(expr, MatMul):
        flat = []
        for a in args:
            if isinstance(a, MatMul):
                flat.extend(a.args)
            else:
                flat.append(a)
        numbers = [a for a in flat if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in flat if getattr(a, "is_Matrix", False)]
        coeff = 1
        for n in numbers:
            coeff *= n
        return MatMul(*(([coeff] if coeff != 1 else []) + matrices)) if len(matrices) > 1 \
            or coeff != 1 else matrices[0]
    if tuple(args) == tuple(expr.args):
        return expr
    return expr.func(*args)


def as_diag(expr):
    """(J_1 (.) ... (.) J_k) (.) dL/dv  ->  diag(J_1 (.) ... (.) J_k) dL/dv.

    An entry-wise product with an adjoint is the product of a diagonal
    Jacobian with that adjoint: the form on the lecture's slide.
    """
    def is_scaled_adjoint(e):
        if not isinstance(e, HadamardProduct):
            return False
        with_adjoint = [f for f in e.args if f.atoms(Adjoint)]
        return len(with_adjoint) == 1 and len(e.args) > 1

    def rewrite(e):
        adjoint = next(f for f in e.args if f.atoms(Adjoint))
        jacobian = [f for f in e.args if f is not adjoint]
        diagonal = jacobian[0] if len(jacobian) == 1 else HadamardProduct(*jacobian)
        return MatMul(DiagMatrix(diagonal), as_diag(adjoint))

    return collect_diagonals(flatten_products(expr.replace(is_scaled_adjoint, rewrite)))


def _split(term):
    """(coefficient, diagonal argument, the factors after it) of c diag(u) X ..., or None."""
    coeff, matrices = term.as_coeff_mmul() if isinstance(term, MatMul) else (1, (term,))
    matrices = getattr(matrices, "args", matrices)
    if len(matrices) > 1 and isinstance(matrices[0], DiagMatrix):
        return coeff, matrices[0].args[0], tuple(matrices[1:])
    return None


def _sum_diagonals(expr):
    """diag(u) X - diag(v) X -> diag(u - v) X, in every sum."""
    if not isinstance(expr, MatAdd):
        return expr
    groups, order, rest = {}, [], []
    for term in expr.args:
        parts = _split(term)
        if parts is None:
            rest.append(term)
            continue
        coeff, u, after = parts
        if after not in groups:
            groups[after] = []
            order.append(after)
        groups[after].append(coeff * u if coeff != 1 else u)
    if all(len(groups[a]) == 1 for a in order):
        return expr
    terms = [MatMul(DiagMatrix(MatAdd(*groups[a]).doit() if len(groups[a]) > 1
                               else groups[a][0]), *a) for a in order]
    return MatAdd(*(terms + rest))


def _merge_diagonals(expr):
    """diag(u) diag(v) -> diag(u (.) v) for neighbours in a product."""
    if not isinstance(expr, MatMul):
        return expr
    out = []
    for a in expr.args:
        if out and isinstance(a, DiagMatrix) and isinstance(out[-1], DiagMatrix):
            out[-1] = DiagMatrix(HadamardProduct(out[-1].args[0], a.args[0]))
        else:
            out.append(a)
    return MatMul(*out) if len(out) != len(expr.args) else expr


def _transpose_out(expr):
    """a^T (.) b^T -> (a (.) b)^T."""
    if isinstance(expr, HadamardProduct) and all(isinstance(a, Transpose) for a in expr.args):
        return Transpose(HadamardProduct(*[a.arg for a in expr.args]))
    return expr


def collect_diagonals(expr):
    """The sums and products of diagonal matrices of ``as_diag`` written as one: the
    forms a reader would simplify by hand."""
    def step(e):
        e = _sum_diagonals(_transpose_out(e))
        return _merge_diagonals(flatten_products(e)) if isinstance(e, MatMul) else e
    return flatten_products(_bottom_up(expr, step))


def _bottom_up(expr, step):
    if not getattr(expr, "args", None) or not getattr(expr, "is_Matrix", False):
        return expr
    args = [_bottom_up(a, step) for a in expr.args]
    if tuple(args) != tuple(expr.args):
        expr = expr.func(*args)
    return step(expr)


def _distribution_targets(cell):
    return {t.name for t in cell.targets} if cell.targets_are_distributions else set()


def unit_sum_targets(expr, cell):
    """1^T y -> 1 for targets that are distributions (one-hot or probabilities)."""
    names = _distribution_targets(cell)
    if not names:
        return expr

    def is_target(e):
        return isinstance(e, StepVar) and e.name in names

    def has_sum(e):
        if not isinstance(e, MatMul):
            return False
        a = e.args
        return any(isinstance(a[i], OneMatrix) and a[i].shape[0] == 1 and is_target(a[i + 1])
                   for i in range(len(a) - 1))

    def rewrite(e):
        a, out, i = e.args, [], 0
        while i < len(a):
            if i + 1 < len(a) and isinstance(a[i], OneMatrix) and a[i].shape[0] == 1 \
                    and is_target(a[i + 1]):
                out.append(Identity(1))
                i += 2
            else:
                out.append(a[i])
                i += 1
        return MatMul(*out).doit(deep=False)

    return expr.replace(has_sum, rewrite)


def unit_sum_facts(expr, cell):
    """The equations 1^T y^(t) = 1 that ``unit_sum_targets`` uses on ``expr``."""
    names = _distribution_targets(cell)
    facts = []
    for m in sorted(expr.atoms(MatMul), key=str):
        a = m.args
        for i in range(len(a) - 1):
            if isinstance(a[i], OneMatrix) and a[i].shape[0] == 1 \
                    and isinstance(a[i + 1], StepVar) and a[i + 1].name in names:
                fact = (MatMul(a[i], a[i + 1]), Identity(1))
                if fact not in facts:
                    facts.append(fact)
    return facts
