"""What the text parser and ``Cell`` refuse, each a defect once found by a
hostile or careless user: answers that never came (exact powers, nesting,
long texts), numbers no float holds, names Python folds together, sizes and
names that are not plain identifiers. Each refusal is one ValueError naming
the line or the argument. A guard alarm turns a hang into a failure (it does
not time anything: speed is for the benchmarks)."""
import contextlib
import re
import signal

import pytest
from sympy import MatrixSymbol, Symbol, symbols

import symrnn
from symrnn.model import parse

HEAD = """params: W[D,D] U[D,N] V[M,D]
input: x[N]
target: y[M]
state: h[D]
"""
TAIL = """
o = V @ h
loss = 0.5 * (o - y).T @ (o - y)
"""


@contextlib.contextmanager
def no_hang(seconds=20):
    def stop(*_):
        raise TimeoutError("the parser did not answer")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def refused(equation, match, **kwargs):
    with no_hang(), pytest.raises(ValueError, match=match):
        symrnn.parse_cell(HEAD + equation + TAIL, **kwargs)


@pytest.mark.parametrize("number", ["9**9**9", "10**10**10", "2**1100", "(-3)**5000",
                                    "(1/2)**5000", "2**10**10**10"])
def test_powers_of_numbers_beyond_a_float(number):
    refused(f"h = tanh({number} * W @ prev(h))", r"^line 5: .*beyond the range of a float")


@pytest.mark.parametrize("coefficient", ["2**600 * (2**600 * (W @ prev(h)))",
                                         "1e308 * 10 * W @ prev(h)",
                                         "(W @ prev(h)) / 2**600 / 2**600",
                                         "1e300 * (1e300 * (W @ prev(h)))"])
def test_coefficients_beyond_a_float(coefficient):
    # SymPy multiplies coefficients together: each number fits, their product does not
    refused(f"h = tanh({coefficient})", r"^line 5: .*beyond the range of a float")


def test_coefficients_within_a_float_are_kept_exactly():
    cell = symrnn.parse_cell(HEAD + "h = tanh(2**1000 * (W @ prev(h)) / 2**1000 + 1e-300 * x.T @ x * prev(h))" + TAIL)
    assert cell.equations[0][1].atoms(symrnn.tanh)


def test_element_wise_powers_are_bounded():
    refused("h = tanh(W @ prev(h)) ** 17", r"^line 5: .*element-wise power is at most 16")
    refused("h = tanh(W @ prev(h)) ** 9**9**9", r"^line 5: .*beyond the range of a float")
    symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h)) ** 16" + TAIL)


@pytest.mark.parametrize("expression", [
    "(" * 300 + "W @ prev(h)" + ")" * 300,          # Python's own parser limit
    "-" * 5000 + "W @ prev(h)",
    "+".join(["prev(h)"] * 2000),                   # a + b + ... is nested to the left
    " + ".join(["W @ prev(h)"] * 70),                # beyond MAX_DEPTH, below Python's limits
    "tanh(" * 80 + "W @ prev(h)" + ")" * 80,
], ids=["parentheses", "signs", "long sum", "sum", "calls"])
def test_nesting_is_bounded(expression):
    refused(f"h = tanh({expression})", r"^line 5: .*(nested|invalid syntax)")


def balanced(leaves):
    if len(leaves) == 1:
        return leaves[0]
    half = len(leaves) // 2
    return f"({balanced(leaves[:half])} + {balanced(leaves[half:])})"


def test_a_line_with_too_many_operations():
    wide = balanced(["prev(h)"] * 512)   # 512 terms, nested 10 deep
    refused(f"h = {wide}", r"^line 5: .*more than 2000 names, numbers and operations")
    symrnn.parse_cell(HEAD + f"h = {balanced(['prev(h)'] * 64)}" + TAIL)


def test_long_texts_are_refused_at_once():
    lines = "\n".join(f"a{i} = tanh(W @ prev(h)) * prev(h)" for i in range(60_000))
    with no_hang(), pytest.raises(ValueError, match=r"^text: \d+ characters; a cell is at most"):
        symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))\n" + lines + TAIL)   # 2 MB
    many = "\n".join(f"a{i}=h" for i in range(parse.MAX_EQUATIONS + 1))
    with no_hang(), pytest.raises(ValueError, match=r"^line \d+: more than 1000 equations"):
        symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))\n" + many + TAIL)


def test_the_longest_accepted_cell_parses():
    # the duplicate check of Cell was quadratic in the number of names
    body = "\n".join(f"a{i} = tanh(h) * h" for i in range(parse.MAX_EQUATIONS - 3))
    text = HEAD + "h = tanh(W @ prev(h))\n" + body + TAIL
    assert len(text) < parse.MAX_CHARACTERS
    with no_hang():
        assert len(symrnn.parse_cell(text).equations) == parse.MAX_EQUATIONS


@pytest.mark.parametrize("lines, character", [
    ("\u210c = tanh(W @ prev(h))\nh = \u210c", "\u210c"),     # script H: NFKC 'H'
    ("h = tanh(W\ufb01 @ prev(h))", "\ufb01"),                 # the ligature fi
    ("h = tanh(W @\u00a0prev(h))", "\u00a0"),
])
def test_names_python_folds_together(lines, character):
    refused(lines, "^line 5: non-ASCII character " + re.escape(repr(character)))


def test_a_declaration_with_a_folded_name():
    with pytest.raises(ValueError, match=r"^line 1: non-ASCII character '\ufb01'"):
        symrnn.parse_cell(HEAD.replace("V[M,D]", "V[M,D] W\ufb01[D,D]") + "h = tanh(W @ prev(h))" + TAIL)


def test_any_text_in_comments():
    symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))   # \u210c, \u00e9t\u00e9, \u2200" + TAIL)


@pytest.mark.parametrize("sizes, match", [
    ({"D": Symbol("evil code")}, r"^sizes\['D'\]: the Symbol's name 'evil code'"),
    ({"D": Symbol("numpy.__dict__['x']")}, r"^sizes\['D'\]"),
    ({"D": Symbol("_hidden")}, r"^sizes\['D'\]"),
    ({"D": Symbol("T")}, r"^sizes\['D'\]"),
    ({"D": Symbol("\u210c")}, r"^sizes\['D'\]"),
    ({"\u210c": 3}, r"^sizes: '\u210c' is not a usable size name"),
])
def test_size_symbols_must_be_plain_names(sizes, match):
    refused("h = tanh(W @ prev(h))", match, sizes=sizes)


@pytest.mark.parametrize("name", [3, None, b"cell", ["cell"]])
def test_the_name_is_a_string(name):
    refused("h = tanh(W @ prev(h))", r"^name: expected a string", name=name)


def test_any_string_is_a_name():
    # the code generator escapes it; the parser only checks that it is text
    cell = symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))" + TAIL,
                             name='x"""\nimport os\n"""\u210c')
    assert cell.name.startswith('x"""')


# -- the same checks for a Cell built in SymPy ----------------------------------

def sympy_cell(D=None, name="c", coefficient=1, h_name="h"):
    D = D if D is not None else Symbol("D", integer=True, positive=True)
    N = Symbol("N", integer=True, positive=True)
    W, U = MatrixSymbol("W", D, D), MatrixSymbol("U", D, N)
    x, y, h = MatrixSymbol("x", N, 1), MatrixSymbol("y", D, 1), MatrixSymbol(h_name, D, 1)
    return symrnn.Cell(name, params=[W, U], inputs=[x], targets=[y], states=[h],
                       equations=[(h, symrnn.tanh(coefficient * (W * symrnn.prev(h) + U * x)))],
                       loss=(h - y).T * (h - y))


@pytest.mark.parametrize("kwargs, match", [
    (dict(D=Symbol("evil code")), r"^sizes: 'evil code' is not a usable size name"),
    (dict(D=Symbol("D") + 1), r"^equations: W has the size D \+ 1"),
    (dict(name=7), r"^name: expected a string"),
    (dict(coefficient=__import__("sympy").Integer(2) ** 1100), r"^equations: h: the coefficient about 2\*\*1100"),
    (dict(h_name="\u210c"), r"^equations: '\u210c' is not a usable name"),
])
def test_cell_checks_the_same(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sympy_cell(**kwargs)


def test_cell_accepts_a_plain_one():
    assert sympy_cell().name == "c"


# -- issue 21: what the parser refuses instead of a crash or a wrong number later ------

@pytest.mark.parametrize("literal", ["1e-400", "1e-320", "1e-99999999", "5e-324", "2.5e-330"])
def test_a_literal_that_a_float_rounds_to_0_or_a_subnormal_is_refused(literal):
    # 1e-400 is 0.0 as a float: it was kept as 0 while 1e-320 was refused
    refused(f"h = tanh(W @ prev(h) + {literal} * (U @ x))",
            rf"^line 5: '{re.escape(literal)}': the number is beyond the range of a float")


def test_literals_are_read_as_written():
    cell = symrnn.parse_cell(HEAD + "h = tanh(0.10000000000000001 * (W @ prev(h)) + 0e-400 * "
                                    "(U @ x) + 1_000.5e-3 * (U @ x))" + TAIL)
    coefficients = {str(c) for c in cell.equations[0][1].atoms(parse.Rational)}
    assert {"2001/2000", "10000000000000001/100000000000000000"} <= coefficients


@pytest.mark.parametrize("expression, match", [
    ("(1 / W) @ prev(h)", r"'1 / W': division by a matrix or row of shape \(D, D\)"),
    ("(W / W) @ prev(h)", r"'W / W': division by a matrix or row"),
    ("(2 / eye(D)) @ prev(h)", r"'2 / eye\(D\)': division by a matrix or row"),
    ("W @ prev(h) / (prev(h) - prev(h))", r"'W @ prev\(h\) / \(prev\(h\) - prev\(h\)\)': "
                                          r"division by zero"),
    ("W @ prev(h) + log(0 * prev(h))", r"'log\(0 \* prev\(h\)\)' is -inf in every entry"),
    ("W @ prev(h) + sqrt(-1 + 0 * prev(h))", r"'sqrt\(-1 \+ 0 \* prev\(h\)\)' is NaN in every"),
    ("W @ prev(h) * exp(1000 + 0 * prev(h))", r"'exp\(1000 \+ 0 \* prev\(h\)\)' is inf in every"),
])
def test_values_that_are_no_number_are_refused(expression, match):
    refused(f"h = tanh({expression})", "^line 5: " + match)


def test_a_byte_order_mark_is_read_as_nothing():
    cell = symrnn.parse_cell("\ufeff" + HEAD + "h = tanh(W @ prev(h))" + TAIL)
    assert [p.name for p in cell.params] == ["W", "U", "V"]


@pytest.mark.parametrize("value", ["no", 1, 0, "", [True]])
def test_targets_are_distributions_is_a_bool(value):
    with pytest.raises(ValueError, match=r"^targets_are_distributions: expected True, False "):
        symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))" + TAIL, targets_are_distributions=value)
    cell = symrnn.parse_cell(HEAD + "h = tanh(W @ prev(h))" + TAIL)
    with pytest.raises(ValueError, match=r"^targets_are_distributions: expected True or False"):
        symrnn.Cell("c", params=cell.params, inputs=cell.inputs, targets=cell.targets,
                    states=cell.states, equations=cell.equations[:-1], loss=cell.equations[-1][1],
                    targets_are_distributions=value)


@pytest.mark.parametrize("declaration, equation, match", [
    ("const: dt", "h = tanh(W @ prev(h))", r"^line 5: unexpected 'dt' in the const declaration"),
    ("const: dt =", "h = tanh(W @ prev(h))", r"^line 5: constant dt: '' is not a number"),
    ("const: dt = x", "h = tanh(W @ prev(h))", r"^line 5: constant dt: 'x' is not a number"),
    ("const: dt = q", "h = tanh(W @ prev(h))", r"^line 5: unknown name 'q'"),
    ("const: dt = 2 * gamma gamma = 1", "h = tanh(W @ prev(h))", r"^line 5: unknown name 'gamma'"),
    ("const: dt = eye(D)", "h = tanh(W @ prev(h))", r"^line 5: constant dt: 'eye\(D\)' is not a"),
    ("const: dt = 1e-400", "h = tanh(W @ prev(h))", r"^line 5: '1e-400': the number is beyond"),
    ("const: dt = 0.1 dt = 0.2", "h = tanh(W @ prev(h))", r"^line 5: 'dt' is declared twice"),
    ("const: W = 0.1", "h = tanh(W @ prev(h))", r"^line 5: 'W' is declared twice"),
    ("const: tanh = 0.1", "h = tanh(W @ prev(h))", r"^line 5: 'tanh' is reserved"),
    ("const: dt = 0.1", "dt = tanh(W @ prev(h))", r"^line 6: cannot assign to the constant 'dt'"),
    ("const: dt = 2", "h = tanh(W @ prev(h)) ** dt", r"^line 6: .*the exponent must be a "),
    ("const: dt = 0", "h = tanh(W @ prev(h)) / dt", r"^line 6: .*division by zero"),
    ("const: big = 1e300", "h = tanh(big * big * W @ prev(h))", r"^line 6: .*beyond the range"),
])
def test_constants_are_checked(declaration, equation, match):
    with no_hang(), pytest.raises(ValueError, match=match):
        symrnn.parse_cell(HEAD + declaration + "\n" + equation + TAIL)


@pytest.mark.parametrize("equation, match", [
    ("Q = U @ x @ x.T", r"^line 5: 'Q' is a matrix of shape \(D, N\) that reads x; a named "
                        r"matrix is"),
    ("Q = W + prev(h) @ prev(h).T", r"^line 5: 'Q' is a matrix of shape \(D, D\) that reads "
                                    r"prev\(h\)"),
    ("Q = W\nQ = U", r"^line 6: 'Q' is computed twice \(first on line 5\)"),
])
def test_a_named_matrix_reads_parameters_only(equation, match):
    refused(equation + "\nh = tanh(W @ prev(h))", match)
