"""A normal form of matrix expressions, for an exact proof that two forms are equal.

``normal_form(expr, derivation)`` writes ``expr`` as a sum of monomials, each a
coefficient times a chain of matrix factors, after rewrites that are identities:

- adjoints of intermediate variables replaced by their definitions
  (``Derivation.inline``), so that dL/dz^(t) and (1 - h^(t) (.) h^(t)) (.) dL/dh^(t)
  are one form;
- values named as in the cell's equations: tanh(z^(t)) is h^(t), W h^(t-1) + U x^(t)
  is z^(t);
- products distributed over sums, transposes moved to the leaves, sums over t
  split into one sum per monomial;
- diag(v) X = v (.) X for a column X (and (v (.) a) b^T for X = a b^T), X^T diag(v)
  likewise on rows, diag(u) diag(v) = diag(u (.) v);
- 1^T y^(t) = 1 for targets that are distributions (the cell says so).

Two expressions with equal normal forms are equal for every T and every size;
unequal normal forms prove nothing (the numbers decide then). Returns None when
the expression is too large to expand (more than ``MAX_TERMS`` monomials).
"""
import weakref

from sympy import (HadamardPower, HadamardProduct, Identity, Integer, MatAdd, MatMul, MatPow,
                   MatrixSymbol, OneMatrix, Transpose, ZeroMatrix, default_sort_key)
from sympy.matrices.expressions.diagonal import DiagMatrix

from ..graph.unroll import at_time, shared, t
from ..model.nodes import Adjoint, StepVar, SumOverTime
from ..ops import Elementwise
from .forms import free_symbols
from .nodes import StepLossAdjoint
from .syntax import MAX_POWER

MAX_TERMS = 4_000
INLINE_PASSES = 4


class _TooLarge(Exception):
    pass


def _rows(e):
    return e.shape[0]


def _is_column(chain):
    return _chain_shape(chain)[1] == 1


def _chain_shape(chain):
    return (chain[0].shape[0], chain[-1].shape[1])


def _product(chain):
    return chain[0] if len(chain) == 1 else MatMul(*chain)


class _Normaliser:
    def __init__(self, derivation):
        self.d = derivation
        cell = derivation.cell
        self.cell = cell
        self.distributions = {y.name for y in cell.targets} if cell.targets_are_distributions \
            else set()
        # the right-hand side of every equation at step t, with the shared parameters
        self.templates = [(lhs, shared(cell, at_time(cell, rhs, t)))
                          for lhs, rhs in cell.equations[:-1]
                          if not isinstance(rhs, (MatrixSymbol, StepVar))]
        self.memo = {}
        self.named_memo = {}
        self.orienting = False

    # -- named values -------------------------------------------------------------------
    def named(self, e):
        """``e`` with every sub-expression that an equation names replaced by its name."""
        if not getattr(e, "args", None) or not getattr(e, "is_Matrix", False) or \
                isinstance(e, (StepVar, MatrixSymbol, Adjoint, StepLossAdjoint)):
            return e
        if e not in self.named_memo:
            self.named_memo[e] = self._named(e)
        return self.named_memo[e]

    def _named(self, e):
        args = [self.named(a) if getattr(a, "is_Matrix", False) else a for a in e.args]
        if tuple(args) != tuple(e.args):
            e = e.func(*args)
        names = {v.name for v in e.atoms(StepVar)}
        for lhs, template in self.templates:
            if template.shape != e.shape or names != self._names(template):
                continue
            for shift in self._shifts(e, template):
                shifted = template.xreplace({t: t + shift})
                if shifted == e or self._same_form(shifted, e):
                    return StepVar(lhs.name, t + shift, *lhs.shape)
        return e

    @staticmethod
    def _names(template):
        return {v.name for v in template.atoms(StepVar)}

    def _same_form(self, a, b):
        """Whether ``a`` and ``b`` have one normal form (W h + U x and U x + W h)."""
        try:
            return self.rebuild(a) == self.rebuild(b)
        except _TooLarge:
            return False

    @staticmethod
    def _shifts(e, template):
        found = set()
        mine = {}
        for v in e.atoms(StepVar):
            mine.setdefault(v.name, set()).add(v.time)
        for v in template.atoms(StepVar):
            for time in mine.get(v.name, ()):
                found.add(time - v.time)
        return found

    # -- expansion ---------------------------------------------------------------------
    def expand(self, e):
        """[(coefficient, (factor, ...)), ...] with every factor in normal form."""
        if e in self.memo:
            return self.memo[e]
        out = self._expand(e)
        if len(out) > MAX_TERMS:
            raise _TooLarge
        self.memo[e] = out
        return out

    def _expand(self, e):
        if isinstance(e, ZeroMatrix):
            return []
        if isinstance(e, MatAdd):
            return [term for a in e.args for term in self.expand(a)]
        if isinstance(e, MatMul):
            coeff, factors = e.as_coeff_matrices()
            out = [(coeff, ())]
            for f in factors:
                out = [(c1 * c2, f1 + f2) for c1, f1 in out for c2, f2 in self.expand(f)]
                if len(out) > MAX_TERMS:
                    raise _TooLarge
            return [(c, self.chain(f)) for c, f in out if c != 0]
        if isinstance(e, Transpose):
            return [(c, self.chain(tuple(self.transpose(a) for a in reversed(f))))
                    for c, f in self.expand(e.arg)]
        if isinstance(e, HadamardPower):
            return self.expand(HadamardProduct(*[e.base] * int(e.exp)))
        if isinstance(e, MatPow) and e.exp.is_Integer and 1 <= e.exp <= MAX_POWER:
            return self.expand(MatMul(*[e.base] * int(e.exp)))     # P^2 = P P
        if isinstance(e, HadamardProduct):
            out = [(Integer(1), [])]
            for a in e.args:
                out = [(c1 * c2, chains + [f]) for c1, chains in out for c2, f in self.expand(a)]
                if len(out) > MAX_TERMS:
                    raise _TooLarge
            return [(c, self.hadamard(chains)) for c, chains in out]
        if isinstance(e, DiagMatrix):
            out = []
            for c, f in self.expand(e.args[0]):
                scalars, rest = self._split_scalars(f)     # diag(a (b^T c)) = diag(a) (b^T c)
                out.append((c, self.chain((DiagMatrix(_product(tuple(rest))),) + tuple(scalars))))
            return out
        if isinstance(e, SumOverTime):
            lo, hi = e.limits
            index = e.index
            out = []
            for c, f in self.expand(e.term):
                body = _product(f)
                if index in c.free_symbols:
                    body, c = c * body, Integer(1)
                if index != t and t not in free_symbols(body):
                    body, index_ = body.xreplace({index: t}), t
                else:
                    index_ = index
                out.append((c, (SumOverTime(body, index_, lo, hi),)))
            return out
        if isinstance(e, ZeroMatrix):
            return []
        if isinstance(e, Elementwise):
            arg = self.rebuild(e.arg)
            value = _of_constant(e, arg)
            if value is not None:       # tanh(0) = 0, exp(c 1) = exp(c) 1
                return [(value, (OneMatrix(*e.shape),))] if value != 0 else []
            return [(Integer(1), (type(e)(arg),))]
        if isinstance(e, OneMatrix) and e.shape == (1, 1):
            return [(Integer(1), (Identity(1),))]     # the 1x1 one is the number 1
        if isinstance(e, (StepVar, MatrixSymbol, Adjoint, StepLossAdjoint, OneMatrix, Identity)):
            return [(Integer(1), (e,))]
        raise _TooLarge   # an unknown node: no normal form

    def rebuild(self, e):
        """The normal form of ``e`` as one expression (for the argument of a function)."""
        terms = self.combine(self.expand(e))
        if not terms:
            return ZeroMatrix(*e.shape)
        parts = [c * m if c != 1 else m for m, c in sorted(terms.items(),
                                                          key=lambda kv: default_sort_key(kv[0]))]
        return parts[0] if len(parts) == 1 else MatAdd(*parts)

    @staticmethod
    def combine(terms):
        out = {}
        for c, f in terms:
            if not f:
                continue
            m = _product(f)
            out[m] = out.get(m, 0) + c
        return {m: c for m, c in out.items() if c != 0}

    # -- factors -----------------------------------------------------------------------
    def transpose(self, a):
        if isinstance(a, Transpose):
            return a.arg
        if isinstance(a, (Identity, DiagMatrix)) or a.shape == (1, 1):
            return a            # a 1x1 factor is its own transpose
        if isinstance(a, OneMatrix):
            return OneMatrix(a.shape[1], a.shape[0])
        if isinstance(a, SumOverTime):
            inner = a.term
            chain = inner.args if isinstance(inner, MatMul) else (inner,)
            flipped = self.chain(tuple(self.transpose(x) for x in reversed(chain)))
            return SumOverTime(_product(flipped), a.index, *a.limits)
        return Transpose(a)

    def hadamard(self, chains):
        """The normal form of the entry-wise product of ``chains`` (tuples of factors)."""
        scalars, flat = [], []
        for chain in chains:   # (a b^T c) (.) d = (a (.) d) (b^T c): 1x1 blocks come out
            blocks, rest = self._split_scalars(chain)
            scalars += blocks
            rest = tuple(rest)
            if len(rest) == 1 and isinstance(rest[0], HadamardProduct):
                flat.extend((x,) if not isinstance(x, MatMul) else tuple(x.args)
                            for x in rest[0].args)
            else:
                flat.append(rest)
        shape = _chain_shape(flat[0])
        if shape == (1, 1):                     # of 1x1 values: their product
            return self.chain(tuple(f for c in flat for f in c) + tuple(scalars))
        if shape[0] == 1 and shape[1] != 1:     # rows: (a (.) b)^T
            columns = [self.chain(tuple(self.transpose(x) for x in reversed(c))) for c in flat]
            inner = self.hadamard(columns)
            core = self.chain(tuple(self.transpose(x) for x in reversed(inner)))
        else:
            kept = [c for c in flat if not (len(c) == 1 and isinstance(c[0], OneMatrix))]
            if not kept:
                core = flat[0]
            elif len(kept) == 1:
                core = kept[0]
            else:
                core = (HadamardProduct(*sorted((_product(c) for c in kept),
                                                key=default_sort_key)),)
        return self._scalars_placed(tuple(core) + tuple(scalars)) if scalars else tuple(core)

    def chain(self, factors):
        """A product of normal factors, simplified: identities dropped, diagonal
        matrices merged into the vectors next to them, 1^T y = 1 for distributions; a
        product that is 1x1 as a whole in its smallest orientation (tanh(1^T a) and
        tanh(a^T 1) are one form)."""
        out = self._chain(factors)
        if len(out) > 1 and _chain_shape(out) == (1, 1) and not self.orienting:
            self.orienting = True       # (the orientations are chains themselves)
            try:
                block = self._oriented(out)
            finally:
                self.orienting = False
            out = tuple(block.args) if isinstance(block, MatMul) else (block,)
        return out

    def _chain(self, factors):
        scalars, f = self._split_scalars(tuple(factors))
        changed = True
        while changed:
            changed = False
            if len(f) > 1 and any(isinstance(x, Identity) for x in f):
                f = [x for x in f if not isinstance(x, Identity)] or f[:1]
                changed = True
            for i in range(len(f) - 1):
                a, b = f[i], f[i + 1]
                if isinstance(a, DiagMatrix) and isinstance(b, DiagMatrix):
                    merged = self.hadamard([(a.args[0],), (b.args[0],)])
                    f[i:i + 2] = [DiagMatrix(_product(merged))]
                    changed = True
                    break
                if self._unit(a, b):
                    f[i:i + 2] = []
                    changed = True
                    break
            if changed:
                continue
            for i in range(len(f) - 1, -1, -1):     # the rightmost first: inner products
                a = f[i]
                if not isinstance(a, DiagMatrix):
                    continue
                for j in range(i + 1, len(f)):       # diag(v) X..., X... a column
                    if _is_column(f[i + 1:j + 1]) and f[i + 1].shape[0] == a.shape[1]:
                        prefix = tuple(f[i + 1:j + 1])
                        f[i:j + 1] = list(self.hadamard([(a.args[0],), prefix]))
                        changed = True
                        break
                if changed:
                    break
                for j in range(i - 1, -1, -1):       # ...Y diag(v), ...Y a row
                    if _chain_shape(f[j:i])[0] == 1 and f[i - 1].shape[1] == a.shape[0]:
                        suffix = tuple(self.transpose(x) for x in reversed(f[j:i]))
                        inner = self.hadamard([(a.args[0],), suffix])
                        f[j:i + 1] = [self.transpose(x) for x in reversed(inner)]
                        changed = True
                        break
                if changed:
                    break
        return self._scalars_placed(tuple(f) + tuple(scalars)) if f else ()

    def _scalars_placed(self, chain):
        """The 1x1 blocks of a chain (a^T b inside a product) commute with the rest: each
        is taken out in its smaller orientation, and all are put, sorted, at the first
        place where a column meets a row."""
        blocks, rest = self._split_scalars(chain)
        if not blocks or not rest:
            return chain
        blocks.sort(key=default_sort_key)
        k = 0 if rest[0].shape[0] == 1 else next(
            (n for n in range(1, len(rest) + 1) if rest[n - 1].shape[1] == 1), len(rest))
        return tuple(rest[:k]) + tuple(blocks) + tuple(rest[k:])

    def _split_scalars(self, chain):
        """([1x1 blocks], [the other factors]) of a chain: a block is a run of factors
        from a row to a column (x^T y); scalars commute, so the rest stays a product."""
        if len(chain) < 2:
            return [], list(chain)
        blocks, rest, i = [], [], 0
        while i < len(chain):
            j = i
            if chain[i].shape[0] == 1:
                while j < len(chain) and chain[j].shape[1] != 1:
                    j += 1
            if chain[i].shape[0] == 1 and j < len(chain) and (i > 0 or j < len(chain) - 1):
                if not (j == i + 1 and self._unit(chain[i], chain[j])):    # 1^T y = 1
                    blocks.append(self._oriented(chain[i:j + 1]))
                i = j + 1
            else:
                rest.append(chain[i])
                i += 1
        if not rest:
            return [], list(chain)
        return blocks, rest

    def _oriented(self, block):
        """A 1x1 block x^T y as 1^T (x (.) y), the entry-wise product in normal form; of
        the places where the block splits into a row and a column, the smallest."""
        if len(block) == 1:
            return block[0]
        chain = self.chain
        straight = chain(tuple(block))
        options = []
        for k in range(1, len(straight)):
            left, right = straight[:k], straight[k:]
            if _chain_shape(left)[0] == 1 and _chain_shape(right)[1] == 1:
                column = chain(tuple(self.transpose(x) for x in reversed(left)))
                product = self.hadamard([column, tuple(right)])
                options.append(_product((OneMatrix(1, product[0].shape[0]),) + tuple(product)))
        return min(options, key=default_sort_key) if options else _product(straight)

    def _unit(self, a, b):
        """a b = 1 (a 1x1 one): 1^T y or y^T 1 for a target that is a distribution."""
        def target(x):
            return isinstance(x, StepVar) and x.name in self.distributions
        if isinstance(a, OneMatrix) and a.shape[0] == 1 and target(b):
            return True
        return isinstance(a, Transpose) and target(a.arg) and isinstance(b, OneMatrix) \
            and b.shape[1] == 1


def _of_constant(e, arg):
    """f(c) when ``e`` is an entry-wise function f of the constant column c 1 (or 0), else
    None."""
    if type(e).scalar is Elementwise.scalar:      # softmax: not entry by entry
        return None
    if isinstance(arg, ZeroMatrix):
        c = Integer(0)
    elif isinstance(arg, OneMatrix):
        c = Integer(1)
    elif isinstance(arg, MatMul) and len(arg.args) == 2 and isinstance(arg.args[1], OneMatrix) \
            and arg.args[0].is_number:
        c = arg.args[0]
    else:
        return None
    try:
        value = type(e).scalar(c)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if value.is_number and value.is_finite else None


def _without_dead_states(expr, derivation):
    """dL/ds^(k) = 0 for a state s that nothing depends on (its recurrence is 0)."""
    dead = {a.var.name for a, e in derivation.adjoints.items()
            if isinstance(e, ZeroMatrix) and a.var.name in {s.name for s in derivation.cell.states}}
    if not dead:
        return expr
    return expr.replace(lambda e: isinstance(e, Adjoint) and isinstance(e.var, StepVar)
                        and e.var.name in dead, lambda e: ZeroMatrix(*e.shape))


_NORMALISERS = {}   # id(derivation) -> normaliser, while the derivation lives


def normaliser(derivation):
    """The normaliser of ``derivation``, kept while it lives: its memos serve every
    answer graded against it."""
    key = id(derivation)
    n = _NORMALISERS.get(key)
    if n is None or n.d is not derivation:
        n = _NORMALISERS[key] = _Normaliser(derivation)
        weakref.finalize(derivation, _NORMALISERS.pop, key, None)
    return n


def normal_form(expr, derivation):
    """{monomial: coefficient} of ``expr`` (see the module docstring), or None."""
    if expr.atoms(StepLossAdjoint):
        return None
    n = normaliser(derivation)
    try:
        inlined = _without_dead_states(expr, derivation)
        for _ in range(INLINE_PASSES):  # the derivation inlines a long chain in parts
            again = _without_dead_states(derivation.inline(inlined), derivation)
            if again == inlined:
                break
            inlined = again
        return n.combine(n.expand(n.named(inlined)))
    except (_TooLarge, RecursionError):
        return None


def equal(a, b, derivation):
    """True when ``a`` and ``b`` have the same normal form (a proof); False otherwise."""
    fa, fb = normal_form(a, derivation), normal_form(b, derivation)
    return fa is not None and fa == fb
