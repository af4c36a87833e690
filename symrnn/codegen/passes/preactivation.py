"""preactivation: an adjoint read only times one forward factor, stored as that product.

Input: ``module.problem``. Output: the same, where such an adjoint (a gate's
dL/df, read only times sigma'(f)) is replaced by the adjoint of a new value,
its pre-activation, in the adjoints and in the gradients.

The derivation gives the adjoint of a gate's value, ``dL/df``, and every use
of it multiplies it by the same forward factor, the activation's derivative:
``sigma'(f) * dL/df`` is what dL/dh at step t-1, the weight gradients and
dL/dh0 read. Storing that product instead,

    dL/dz_f(t) = K(t) * (definition of dL/df)(t)      with K = (1 - f) * f,

makes each of those reads a plain row (``W_f^T dz_f``: the gates' terms of
dL/dh are one product over their rows side by side, the weight gradients one
product each), and K joins the forward factors of the definition, which are
computed before the loop as one array (``ds * (s_prev * (1 - f) * f)`` is one
multiply per step).

It applies to any adjoint (of any cell) whose every occurrence, in the
adjoints and in the gradients, is a factor of an element-wise product whose
other factors read no adjoint and include, up to the step, the factors of K
(those that all occurrences have: the gradient of a diagonal weight w_f reads
``sigma'(f) * dL/df * h_prev``).
A sum whose terms all share an adjoint factor is factored first
(``-(dh * a) + dh * h_prev`` as ``dh * (h_prev - a)``), so that what remains
is a forward value.
"""
from sympy import HadamardProduct, MatAdd, MatMul, default_sort_key, preorder_traversal

from dataclasses import replace

from ...graph.unroll import t
from ...model.nodes import Adjoint, StepVar


def run(module):
    problem = module.problem
    once = {**problem.gradients, **problem.fixed_adjoints}  # keys: names, Adjoint nodes
    adjoints, once = preactivation_adjoints(problem.adjoints, once)
    made = {a.var.name for a in adjoints} - {a.var.name for a in problem.adjoints}
    return replace(module, problem=replace(
        problem, adjoints=adjoints, gradients={k: once[k] for k in problem.gradients},
        fixed_adjoints={k: once[k] for k in problem.fixed_adjoints},
        internal=problem.internal | made))


def _adjoints_in(expr):
    return [n for n in preorder_traversal(expr) if isinstance(n, Adjoint)]


def _factors(expr):
    return list(expr.args) if isinstance(expr, HadamardProduct) else [expr]


def _product(factors):
    return factors[0] if len(factors) == 1 else HadamardProduct(*factors)


def _signed(term):
    """``(sign, core)`` of a term ``-x`` or ``x``."""
    if isinstance(term, MatMul):
        coeff, factors = term.as_coeff_matrices()
        if coeff == -1 and len(factors) == 1:
            return -1, factors[0]
    return 1, term


def factor_common(expr):
    """A sum whose terms all are element-wise products with one adjoint factor
    in common, as that factor times the sum of the rest; else ``expr``."""
    if not isinstance(expr, MatAdd):
        return expr
    terms = [_signed(a) for a in expr.args]
    common = None
    for _, core in terms:
        adj = {f for f in _factors(core) if isinstance(f, Adjoint)}
        common = adj if common is None else common & adj
    if not common or any(not isinstance(core, HadamardProduct) for _, core in terms):
        return expr
    factor = sorted(common, key=default_sort_key)[0]
    rest = []
    for sign, core in terms:
        others = list(core.args)
        others.remove(factor)
        if any(_adjoints_in(o) for o in others):
            return expr
        part = _product(others)
        rest.append(part if sign > 0 else MatMul(-1, part))
    return HadamardProduct(factor, MatAdd(*rest))


def _uses(var_name, exprs):
    """``(occurrences, products)``: how many adjoints of ``var_name`` the
    expressions read, and ``[(product node, time, other factors)]`` for those
    that are a factor of an element-wise product with adjoint-free other factors."""
    count, found = 0, []
    for e in exprs:
        for node in preorder_traversal(e):
            if isinstance(node, Adjoint) and node.var.name == var_name:
                count += 1
            if isinstance(node, HadamardProduct):
                mine = [a for a in node.args if isinstance(a, Adjoint) and a.var.name == var_name]
                if len(mine) != 1:
                    continue
                others = [a for a in node.args if a is not mine[0] and a != mine[0]]
                if others and not any(_adjoints_in(o) for o in others):
                    found.append((node, mine[0].var.time, others))
    return count, found


def _common(found):
    """The factors (written at step t) that every product of ``found`` has,
    at its own step, or None; a step without t (dL/dh0 reads step 1) is
    checked, not used to find them."""
    common = None
    for _, time, others in found:
        if not time.has(t):
            continue
        mine = [o.subs(t, 2 * t - time) for o in others]  # back at step t
        if common is None:
            common = mine
        else:
            left = list(mine)
            common = [c for c in common if c in left and not left.remove(c)]
    if not common or any(_rest(others, common, time) is None for _, time, others in found):
        return None
    return common


def _rest(others, common, time):
    """``others`` without the factors ``common`` at step ``time`` (each once),
    or None when one of them is missing."""
    left = list(others)
    for c in common:
        if _at(c, time) not in left:
            return None
        left.remove(_at(c, time))
    return left


def _at(expr, time):
    """``expr`` (written at step t) at step ``time``."""
    return expr if time == t else expr.subs(t, time)


def preactivation_adjoints(adjoints, gradients):
    """``(adjoints, gradients)`` with every adjoint that is only read times one
    forward factor K replaced by the adjoint of an internal value ``_in_v``,
    defined as K times the old definition (see the module's docstring)."""
    # the adjoints and gradients as numbered entries, and which entries read an
    # adjoint of each variable: each swap rewrites only those (linear in a long chain)
    entries = [[a, factor_common(e)] for a, e in adjoints.items()]
    entries += [[n, e] for n, e in gradients.items()]
    readers = {}
    for i, (_, e) in enumerate(entries):
        for node in e.atoms(Adjoint):
            readers.setdefault(node.var.name, set()).add(i)
    for i in range(len(adjoints)):
        var = entries[i][0].var
        if var.time != t:
            continue
        where = sorted(readers.get(var.name, ()))
        count, found = _uses(var.name, [entries[j][1] for j in where])
        if not found or len(found) != count:
            continue
        common = _common(found)
        if common is None:
            continue
        z = StepVar(f"_in_{var.name}", t, *var.shape)
        swap = {node: _product([Adjoint(z.at(time))] + _rest(others, common, time))
                for node, time, others in found}
        entries[i] = [Adjoint(z), HadamardProduct(*common, *_factors(
            entries[i][1].xreplace(swap)))]
        for j in where:
            if j != i:
                entries[j][1] = entries[j][1].xreplace(swap)
        readers[z.name], readers[var.name] = set(where), set()
    return (dict(entries[:len(adjoints)]), dict(entries[len(adjoints):]))
