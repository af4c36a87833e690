"""Expression rewrites for the text: the slide's diag form, 1^T y = 1, flat products.

Each is a SymPy transformation of the engine's expressions; the sheet prints
the expression before and after, so every step it shows is one the code made.
"""
from sympy import HadamardProduct, Identity, MatMul, OneMatrix
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..model.nodes import Adjoint, StepVar

__all__ = ["as_diag", "flatten_products", "unit_sum_targets", "unit_sum_facts"]


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

    return flatten_products(expr.replace(is_scaled_adjoint, rewrite))


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
