"""Every formula symrnn prints parses back to the derivation's expression.

The printed forms, in every notation profile of ``symrnn/render/notations``: what
``symrnn derive`` prints as text (``render.text.derivation_text``) and as LaTeX
(``render.sections.derivation_align``, long equations broken over continuation
lines), a derivation's ``_repr_latex_`` (its forward equations and results, broken
at the notebook's width), and the summary of the sheets (``derivation_context(...).summary`` of the
cell with its pre-activations named and their gradients named delta, as
``render.sheet.readable`` makes it), laid out for the full text width and for a
narrow one (so that long right-hand sides are broken over lines). Each printed line
``lhs = rhs`` (or ``lhs = rhs_1 = rhs_2``) is read by the answer parsers in the
profile's notation (``grading.notation.from_profile``: its symbols, its layout, the
sheet's deltas): the left side names the quantity (dL/dW, dL/dh^(t), dL/dh^(T),
dL/dh^(0), z^(t), delta_f^(t)), whose expression the derivation gives; the right side
must equal it exactly (the normal form of ``canonical.py``) and at random networks
(``numeric.py``). Over the presets and over cells drawn by the generator of
``test_fuzz_cells.py``.
"""
import re

import pytest
from sympy import Identity
from hypothesis import HealthCheck, given, settings, strategies as st

import symrnn
from symrnn.grading import Grader
from symrnn.grading.answer import read
from symrnn.grading.canonical import equal
from symrnn.grading.keys import derived_value
from symrnn.grading.notation import from_profile
from symrnn.grading.numeric import close, values
from symrnn.graph.unroll import shared
from symrnn.model.nodes import Adjoint, StepVar
from symrnn.render.narrative import derivation_context, fit
from symrnn.render.notation import builtin_notations
from symrnn.render.notebook import set_notation
from symrnn.render.sections import derivation_align
from symrnn.render.sheet import readable
from symrnn.render.text import derivation_text
from symrnn.render.width import TEXT_WIDTH
from test_fuzz_cells import cells

PROFILES = builtin_notations()
PRESETS = {
    "elman": lambda: symrnn.ElmanRNN(),
    "elman relu mse bias": lambda: symrnn.ElmanRNN("relu", "mse", True),
    "elman sigmoid upstream": lambda: symrnn.ElmanRNN("sigmoid", "upstream"),
    "elman identity softmax bias": lambda: symrnn.ElmanRNN("identity", "softmax_ce", True),
    "lstm": symrnn.LSTM,
    "gru": symrnn.GRU,
}
# cells the fuzzing found: a quotient whose other factors all hold an adjoint (the LaTeX
# printer dropped its \oslash: 1/2 sqrt(u) for 1/2 1 (/) sqrt(u)); o1 beside o at step 1,
# both o_{1} in subscript time; a named matrix read by a step; a state nothing reads (its
# delta is 0); a matrix power (P_1^2, printed P_1**2 as text, (P_1^T)^2 in rows)
FOUND = {
    "named matrix": """params: b0[D] P1[D, D] b2[D] V3[M, D]
input: x[N]
target: y[M]
state: h[D]
a0_0 = (0.5 * b0)
a0 = (sigmoid(a0_0) + 0.5)
Q0 = 2 * P1 - P1
g0 = sigmoid(((Q0 @ b2) + a0))
h = g0 * prev(h) + (1 - g0) * tanh(a0_0)
o0 = V3 @ h
loss = 0.5 * (o0 - y).T @ (o0 - y)""",
    "dead state": """params: P0[E, D] P1[E, D] b2[E] V3[M, D]
input: x[N]
target: y[M]
state: h[D] s[E]
const: k0 = 1/3
h = tanh(k0 * ones(D))
s = tanh(b2 - k0 * ones(E) + (P0 + P1) @ (k0 * ones(D)))
o0 = V3 @ h
loss = y.T @ o0""",
    "matrix power": """params: P0[D, D] P1[D, D] V2[M, D]
input: x[N]
target: y[M]
state: h[D]
g0 = sigmoid((P0 @ ((P1 @ P1) @ prev(h))))
h = g0 * prev(h) + (1 - g0) * tanh(x.T @ x * prev(h))
loss = -y.T @ log_softmax(V2 @ prev(h))""",
    "quotient first": """params: P0[D, J] P1[J, D] b2[D] V3[M, D]
input: x[N] c[K]
target: y[M]
state: h[D]
h = sigmoid(((P0 @ P1) @ (sqrt(1 + b2 * b2))))
o0 = V3 @ h
loss = y.T @ o0 + prev(h).T @ prev(h) / 4""",
    "o1 and o at step 1": """params: w0[1, N] b1[N] b2[D] b3[D] V4[M, D] V5[J, D]
input: x[N]
target: y[M] m[J]
state: h[D]
h = tanh(((w0 @ (x + b1)) * (b2 - b3)))
o1 = V5 @ h
loss = -y.T @ log_softmax(V4 @ prev(h)) + m.T @ o1 + 1.5 + 0.1 * sum(V4)""",
}
NARROW = 0.45 * TEXT_WIDTH   # a summary laid out this narrow breaks its long lines


def test_every_builtin_profile_is_covered():
    assert {"goodfellow", "d2l", "d2l-bptt", "cs231n"} <= set(PROFILES)


def meaning(grader, lhs):
    """The derivation's expression of a printed left side (a transposed one in rows)."""
    if lhs.is_Transpose:
        return meaning(grader, lhs.arg).T
    d = grader.derivation
    if isinstance(lhs, Adjoint):
        return derived_value(d, lhs)
    if isinstance(lhs, StepVar):
        return shared(d.cell, dict(d.step)[lhs])
    if lhs in d.cell.fixed_values:                  # a named matrix: Q = 2 P - P
        return dict(d.cell.fixed)[lhs]
    raise AssertionError(f"the left side {lhs} names nothing")


def derive_lines(derivation, profile):
    """(syntax, lhs, [rhs], where) of what ``symrnn derive`` prints: text and LaTeX."""
    out = []
    for line in derivation_text(derivation, profile).splitlines():
        if line.startswith("  ") and " = " in line and not line.strip().startswith("L"):
            lhs, rhs = line.strip().split(" = ", 1)
            out.append(("text", lhs, [rhs], f"derive ({profile})"))
    rows = []
    for line in derivation_align(derivation, profile).splitlines():
        line = line.strip()
        if line.startswith(r"&\quad"):               # a continuation of the line before
            rows[-1][1].append(line[len(r"&\quad"):].rstrip("\\").strip())
        elif "&=" in line:
            lhs, rhs = line.rstrip("\\").split("&=", 1)
            rows.append((lhs.strip(), [rhs.strip()]))
    assert rows
    for lhs, parts in rows:
        if not lhs.startswith("L"):
            out.append(("latex", lhs, [" ".join(parts)], f"derive --format latex ({profile})"))
    return out


def sheet_lines(cell, profile):
    """(grader, [(syntax, lhs, [rhs, ...], where)]) of the sheets' summary of ``cell``
    in ``profile``, at the full width and broken for a narrow one. The grader is the
    named cell's (pre-activations named), reading the profile's notation."""
    d, ts, info = readable(cell, profile)
    p = derivation_context(d, ts=ts, introduced=info.introduced)
    out = []
    for width, label in ((TEXT_WIDTH, "sheet"), (NARROW, "sheet, narrow")):
        for eq in fit(p.summary, "summary", width=width):
            parts, continuations = [], 0
            for op, tex in eq.rows:
                if op == "=":
                    parts.append(tex)
                else:                                     # a continuation line
                    parts[-1] += " " + tex
                    continuations += 1
            before_last = r"t < T" in (eq.condition or "")
            out.append(("latex", eq.lhs, parts, f"{label} ({profile}, {continuations} "
                                                f"continuation lines"
                                                f"{', for t < T' if before_last else ''})"))
    out += notebook_lines(symrnn.derive(cell), profile)
    notation = from_profile(profile, d.cell, adjoints=info.deltas)
    return Grader(d.cell, notation), out


def notebook_lines(derivation, profile):
    r"""The rows of a derivation's ``_repr_latex_`` (the forward equations and the
    results, lines of at most the notebook's width) in ``profile``: lhs &= rhs, a second
    form &= rhs, a continuation &\quad ..., a condition \quad \text{for } t < T."""
    previous = set_notation(profile)
    try:
        shown = derivation._repr_latex_()
    finally:
        set_notation(previous)
    assert shown.startswith(r"$$\begin{aligned}") and shown.endswith(r"\end{aligned}$$")
    body = shown[len(r"$$\begin{aligned}"):-len(r"\end{aligned}$$")]
    rows = []
    for row in body.split(r" \\ "):
        if row.startswith(r"&\text{"):
            continue                                      # a heading
        condition = re.search(r" \\quad \\text\{for \} (.*)$", row)
        if condition:
            row = row[:condition.start()]
        if row.startswith(r"&\quad "):
            rows[-1][1][-1] += " " + row[len(r"&\quad "):]
            rows[-1][2] += 1
        elif row.startswith("&= "):
            rows[-1][1].append(row[len("&= "):])
        else:
            lhs, rhs = row.split(" &= ", 1)
            rows.append([lhs, [rhs], 0, ""])
        if condition:
            rows[-1][3] = condition.group(1)
    assert rows
    return [("latex", lhs, parts, f"_repr_latex_ ({profile}, {n} continuation lines"
                                  f"{', for t < T' if 't < T' in condition else ''})")
            for lhs, parts, n, condition in rows if not lhs.startswith("L")]


def continued(lines):
    """How many continuation lines the printed equations have."""
    return sum(int(re.search(r"(\d+) continuation lines", where).group(1))
               for *_, where in lines if "continuation" in where)


def check_round_trip(grader, lines):
    """Every printed right-hand side parses back to the left side's expression."""
    assert lines
    for syntax, lhs_text, parts, where in lines:
        lhs = read(lhs_text, grader.vocabulary, syntax).expr
        want = meaning(grader, lhs)
        if "for t < T" in where:   # a later step's loss passes back 1 (its dL/dL^(t+1))
            want = want.xreplace({a: Identity(1) for a in want.atoms(Adjoint)
                                  if a.var.name == grader.cell.loss_var.name})
        for rhs_text in parts:
            parsed = read(rhs_text, grader.vocabulary, syntax, lhs.shape)
            assert parsed.expr is not None and not parsed.repairs, \
                (where, lhs_text, rhs_text, parsed.shape_error)
            assert parsed.expr.shape == want.shape, (where, lhs_text, rhs_text)
            assert equal(parsed.expr, want, grader.derivation), (where, lhs_text, rhs_text)
            got, expected = values(grader.points, parsed.expr), values(grader.points, want)
            if "for t < T" in where:    # the line holds before the last step only
                got, expected = [p[:-1] for p in got], [p[:-1] for p in expected]
            assert close(got, expected), (where, lhs_text, rhs_text)


def round_trip(cell, profile):
    check_round_trip(Grader(cell, profile), derive_lines(symrnn.derive(cell), profile))
    grader, lines = sheet_lines(cell, profile)
    check_round_trip(grader, lines)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name, profile):
    round_trip(PRESETS[name](), profile)


@pytest.mark.parametrize("profile", ["goodfellow", "cs231n", "d2l"])
@pytest.mark.parametrize("name", sorted(FOUND))
def test_cells_the_fuzzing_found_round_trip(name, profile):
    round_trip(symrnn.parse_cell(FOUND[name]), profile)


def test_the_summary_is_broken_over_lines_and_named():
    """The narrow layout does break lines, and the sheet's names are read: delta_f,
    z_f (the LSTM's named pre-activations) in D2L's rows."""
    lines = round_trip(symrnn.LSTM(), "d2l")
    assert continued(lines) >= 5
    text = " ".join(" ".join(parts) for _, _, parts, _ in lines)
    assert r"\mathbf{\delta}_{f,t + 1} \mathbf{W}_{hf}^{\top}" in text      # rows, named


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(cells(), st.sampled_from(PROFILES))
def test_fuzzed_cells_round_trip(fuzz, profile):
    try:
        cell = symrnn.parse_cell(fuzz.text)
        symrnn.derive(cell)
    except ValueError:
        return          # a refused cell prints nothing
    round_trip(cell, profile)


def test_the_round_trip_can_fail():
    """A printed line with one symbol changed no longer equals the derivation's."""
    grader = Grader(symrnn.ElmanRNN())
    lines = derive_lines(grader.derivation, "goodfellow")
    syntax, lhs, parts, where = next(line for line in lines if "t - 1" in line[2][0])
    with pytest.raises(AssertionError):
        check_round_trip(grader, [(syntax, lhs, [parts[0].replace("t - 1", "t")], where)])
