"""Answers in plain text: the cell syntax, extended with times, adjoints and sums.

The expression syntax of a cell (``symrnn/model/parse.py``: ``@``, ``*``, ``+``,
``-``, ``/``, ``**``, ``.T``, ``prev(h)``, ``eye(D)``, the functions) plus what an
answer needs, in the forms ``symrnn derive`` prints as well:

    h(t-1)  h^(t-1)  prev(h)     a value at a time (a bare h inside a sum is h^(t))
    dL/dh^(t)  dL_dh(t)  dL/dW   the adjoint dL/dv, a known quantity
    sum(t=1..T, expr)            the sum over t; also sum(expr), sum_t expr and
    sum_{t=1}^{T} expr           (the sum takes the product after it)
    diag(v)   tanh'(z)           diagonal matrix; derivative of an activation
    A B   A @ B                  matrix product (side by side binds tighter)
    a * b   a .* b               entry-wise product;  a / b  a ./ b  entry-wise quotient
    v^T  v.T  v'                 transpose;  v.^2  v**2  entry-wise power
    1  1^T  I  eye(D)  T         ones (column, row), identity, the length T

Written operators (``@ * .* /``) are left-associative with equal precedence, as
in Python and the cell syntax; ``+`` and ``-`` bind loosest.
"""
import re
from dataclasses import replace
from fractions import Fraction

from . import syntax as S
from .syntax import (AnswerSyntaxError, GRAMMAR_DEPTH, MAX_CHARACTERS, MAX_DEPTH, MAX_DIGITS,
                     MAX_TOKENS)
from .times import index_symbol, time_from_items

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<adjoint>dL/d(?=[A-Za-z_(]))
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\*|\./|\.\^|\*\*|\.\.|\.T(?![A-Za-z0-9_])|[-+*/@^'(),=\[\]{}])
""", re.VERBOSE)

FUNCTION_NAMES = {"tanh", "sigmoid", "relu", "softmax", "log_softmax", "exp", "log", "softplus",
                  "abs", "sqrt", "reciprocal", "diag", "step", "sign", "sigma"}


class Tok:
    __slots__ = ("kind", "value", "start", "end", "spaced")

    def __init__(self, kind, value, start, end, spaced):
        self.kind, self.value, self.start, self.end = kind, value, start, end
        self.spaced = spaced   # whitespace before it

    def shown(self):
        return "the end of the answer" if self.kind == "end" else repr(self.value)


def tokenize(text):
    if len(text) > MAX_CHARACTERS:
        raise AnswerSyntaxError(f"{len(text)} characters; an answer is at most "
                                f"{MAX_CHARACTERS}")
    out, i, spaced = [], 0, False
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            raise AnswerSyntaxError(f"the character {text[i]!r} is not understood", text, i,
                                    lexical=True)
        kind = m.lastgroup
        if kind == "space":
            spaced, i = True, m.end()
            continue
        if kind == "number" and len(m.group()) > MAX_DIGITS:
            raise AnswerSyntaxError(f"a number of {len(m.group())} digits; at most "
                                    f"{MAX_DIGITS}", text, i)
        out.append(Tok(kind, m.group(), i, m.end(), spaced))
        if len(out) > MAX_TOKENS:
            raise AnswerSyntaxError(f"more than {MAX_TOKENS} symbols", text, i)
        spaced, i = False, m.end()
    out.append(Tok("end", "", len(text), len(text), spaced))
    return out


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self, k=0):
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self):
        tok = self.toks[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def at(self, kind, value=None, k=0):
        tok = self.peek(k)
        return tok.kind == kind and (value is None or tok.value == value)

    def expect(self, kind, value, what):
        if not self.at(kind, value):
            self.fail(self.peek(), f"expected {what}, found {self.peek().shown()}")
        return self.next()

    def fail(self, tok, message):
        raise AnswerSyntaxError(message, self.text, tok.start if isinstance(tok, Tok) else tok)

    def enter(self):
        # each bracket level passes about five rules of the grammar
        self.depth += 1
        if self.depth > GRAMMAR_DEPTH:
            self.fail(self.peek(), f"nested more than {MAX_DEPTH} deep")

    def leave(self):
        self.depth -= 1

    # -- grammar -------------------------------------------------------------------------
    def answer(self):
        lhs = self.expr()
        node = lhs
        if self.at("op", "="):
            self.next()
            rhs = self.expr()
            node = S.Equation(lhs.start, rhs.end, lhs, rhs)
        if not self.at("end"):
            self.fail(self.peek(), f"unexpected {self.peek().shown()}")
        return node

    def expr(self):
        self.enter()
        if self.at("op", "+"):
            self.next()
        node = self.mul()
        while self.at("op", "+") or self.at("op", "-"):
            op = self.next()
            right = self.mul()
            node = S.Binary(node.start, right.end, op.value, node, right, op.start)
        self.leave()
        return node

    OPS = {"@": "@", "*": "*", ".*": "*", "/": "/", "./": "/"}

    def mul(self):
        self.enter()
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in self.OPS:
            op = self.next()
            right = self.unary()
            node = S.Binary(node.start, right.end, self.OPS[op.value], node, right, op.start)
        self.leave()
        return node

    def unary(self):
        self.enter()
        if self.at("op", "-"):
            tok = self.next()
            arg = self.unary()
            self.leave()
            return S.Negate(tok.start, arg.end, arg)
        if self.at("op", "+"):
            self.next()
        node = self.juxt()
        self.leave()
        return node

    def _starts_primary(self):
        tok = self.peek()
        return tok.kind in ("name", "number", "adjoint") or tok.kind == "op" and tok.value == "("

    def juxt(self):
        if not self._starts_primary():
            self.fail(self.peek(), f"expected a term, found {self.peek().shown()}")
        factors = []
        while self._starts_primary():
            if self._is_prefix_sum():
                factors.append(self.prefix_sum())
                break
            factors.append(self.postfix())
        if len(factors) > 1:    # W 1, 1 x^T: side by side, 1 is the vector of ones
            factors = [S.Constant(f.start, f.end, "ones")
                       if isinstance(f, S.Number) and f.value == 1 else f for f in factors]
        node = factors[0]
        for f in factors[1:]:
            node = S.Binary(node.start, f.end, "@", node, f, f.start)
        return node

    # -- sums ------------------------------------------------------------------------------
    def _is_prefix_sum(self):
        tok = self.peek()
        if tok.kind != "name":
            return False
        return tok.value == "sum_" and self.at("op", "{", 1) or \
            re.fullmatch(r"sum_[a-z]", tok.value) is not None

    def prefix_sum(self):
        tok = self.next()
        index, lower, upper = "t", None, None
        if tok.value == "sum_":
            self.next()   # {
            name = self.expect("name", None, "the sum's index, as in sum_{t=1}^{T}")
            index = name.value
            if self.at("op", "="):
                self.next()
                lower = self._time_until("}", "the lower limit of the sum")
            self.expect("op", "}", "'}'")
            if self.at("op", "^"):
                self.next()
                if self.at("op", "{"):
                    self.next()
                    upper = self._time_until("}", "the upper limit of the sum")
                    self.expect("op", "}", "'}'")
                else:
                    limit = self.next()
                    upper = time_from_items([("num", int(limit.value)) if limit.kind == "number"
                                             and limit.value.isdigit() else ("sym", limit.value)])
                    if upper is None:
                        self.fail(limit, "the upper limit of the sum is not a time")
        else:
            index = tok.value[4:]
        body = self.mul()
        return S.Sum(tok.start, body.end, index, lower, upper, body)

    def call_sum(self, tok):
        """sum(t=1..T, expr), sum(t, expr), sum(expr)."""
        open_ = self.expect("op", "(", "'(' after sum")
        index, lower, upper = "t", None, None
        if self.at("name") and (self.at("op", "=", 1) or self.at("op", ",", 1)):
            index = self.next().value
            if self.at("op", "="):
                self.next()
                lower = self._time_until("..", "the lower limit of the sum")
                self.expect("op", "..", "'..' as in sum(t=1..T, ...)")
                upper = self._time_until(",", "the upper limit of the sum")
            self.expect("op", ",", "',' before the sum's term")
        body = self.expr()
        if not self.at("op", ")"):
            self.fail(self.peek(), f"expected ')' to close the sum at column {open_.start + 1}")
        close = self.next()
        return S.Sum(tok.start, close.end, index, lower, upper, body)

    def _time_until(self, stop, what):
        items, first = [], self.peek()
        while not self.at("op", stop):
            tok = self.peek()
            if tok.kind == "end" or len(items) > 12:
                self.fail(first, f"{what} is not a time")
            if tok.kind == "number" and tok.value.isdigit():
                items.append(("num", int(tok.value)))
            elif tok.kind == "name":
                items.append(("sym", tok.value))
            elif tok.kind == "op" and tok.value in "+-":
                items.append((tok.value, tok.value))
            else:
                self.fail(tok, f"{what} is not a time (write t, t-1, T, 1, ...)")
            self.next()
        time = time_from_items(items)
        if time is None:
            self.fail(first, f"{what} is not a time (write t, t-1, T, 1, ...)")
        return time

    # -- postfix: times, transposes, powers ----------------------------------------------
    def postfix(self):
        self.enter()
        node = self.primary()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == "^" and not tok.spaced:
                self.next()
                node = self._caret(node, tok)
            elif tok.kind == "op" and tok.value in (".T", "'") and not tok.spaced:
                self.next()
                node = S.Transpose(node.start, tok.end, node)
            elif tok.kind == "op" and tok.value in ("**", ".^"):
                self.next()
                exponent = self.next()
                if exponent.kind != "number" or not exponent.value.isdigit():
                    self.fail(exponent, "the exponent must be a positive integer")
                n = int(exponent.value)
                if not 1 <= n <= S.MAX_POWER:
                    self.fail(exponent, f"the exponent must be 1 to {S.MAX_POWER}")
                node = S.Power(node.start, exponent.end, node, n, entrywise=True)
            else:
                break
        self.leave()
        return node

    def _caret(self, node, hat):
        tok = self.peek()
        if tok.kind == "op" and tok.value in MARKS:       # y^*: a mark of the symbol
            self.next()
            if isinstance(node, S.Derivative):
                return replace(node, end=tok.end, of=replace(
                    node.of, end=tok.end, marks=node.of.marks + (MARKS[tok.value],)))
            if not isinstance(node, S.Name) or node.time is not None:
                self.fail(tok, "a mark such as * belongs on a name, e.g. y^*")
            return replace(node, end=tok.end, marks=node.marks + (MARKS[tok.value],))
        if tok.kind == "name" and tok.value == "T":
            self.next()
            return S.Transpose(node.start, tok.end, node)
        if tok.kind == "number" and tok.value.isdigit():
            self.next()
            n = int(tok.value)
            if not 1 <= n <= S.MAX_POWER:
                self.fail(tok, f"the exponent must be 1 to {S.MAX_POWER}")
            return S.Power(node.start, tok.end, node, n)
        if tok.kind == "op" and tok.value == "(":
            time, end = self._paren_time(required=True)
            return self._timed(node, time, end, hat)
        self.fail(tok, "after ^: a time (t-1), T (transpose) or a power such as 2")

    def _paren_time(self, required):
        """A time in parentheses at the current token: (time, end column), or None."""
        open_ = self.peek()
        items, k = [], 1
        while True:
            tok = self.peek(k)
            if tok.kind == "op" and tok.value == ")":
                break
            if tok.kind == "number" and tok.value.isdigit():
                items.append(("num", int(tok.value)))
            elif tok.kind == "name":
                items.append(("sym", tok.value))
            elif tok.kind == "op" and tok.value in "+-":
                items.append((tok.value, tok.value))
            else:
                items = None
                break
            k += 1
            if k > 14:
                items = None
                break
        time = time_from_items(items) if items else None
        if time is None:
            if required:
                self.fail(open_, "a time in parentheses, such as (t-1), is expected here")
            return None
        end = self.peek(k).end
        self.pos += k + 1
        return time, end

    def _timed(self, node, time, end, where):
        if not isinstance(node, (S.Name, S.Derivative)):
            self.fail(where, "a time belongs on a name, e.g. h^(t-1)")
        if isinstance(node, S.Derivative):
            of = node.of
            if of.time is not None:
                self.fail(where, f"{of.core} has two times")
            of = replace(of, end=end, time=time)
            return S.Derivative(node.start, end, of, node.loss_time)
        if node.time is not None:
            self.fail(where, f"{node.core} has two times")
        return replace(node, end=end, time=time)

    # -- primaries ---------------------------------------------------------------------
    def primary(self):
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            if self.at("op", "/") and self.at("number", None, 1) and not self.peek().spaced \
                    and not self.peek(1).spaced:   # 1/2: a number, as derive prints it
                self.next()
                den = self.next()
                if Fraction(den.value) == 0:
                    self.fail(den, "division by zero")
                return S.Number(tok.start, den.end, Fraction(tok.value) / Fraction(den.value))
            if self.at("op", "^") and self.at("name", "T", 1) and tok.value == "1":
                self.next()
                end = self.next().end
                return S.Transpose(tok.start, end, S.Constant(tok.start, tok.end, "ones"))
            return S.Number(tok.start, tok.end, Fraction(tok.value))
        if tok.kind == "op" and tok.value == "(":
            open_ = self.next()
            inner = self.expr()
            if not self.at("op", ")"):
                self.fail(self.peek(), f"expected ')' to close the '(' at column "
                                       f"{open_.start + 1}, found {self.peek().shown()}")
            close = self.next()
            values = {f: getattr(inner, f) for f in inner.__dataclass_fields__}
            values.update(start=open_.start, end=close.end)
            return type(inner)(**values)
        if tok.kind == "adjoint":
            self.next()
            name = self.peek()
            if name.kind != "name" or name.spaced:
                self.fail(name, "dL/d must be followed by a name, as in dL/dh^(t)")
            self.next()
            of = self._name(name)
            return S.Derivative(tok.start, of.end, of)
        if tok.kind == "name":
            self.next()
            return self._named(tok)
        self.fail(tok, f"expected a term, found {tok.shown()}")

    def _name(self, tok):
        """A name: W, W_hh (a name part), h_t, h_0 (a time), z_{f,t-1} (both), with a
        time right after it: h(t-1)."""
        word = tok.value
        if word.endswith("_") and len(word) > 1 and self.at("op", "{") \
                and not self.peek().spaced:
            node = self._braced_subscript(tok)
        elif "_" in word.strip("_"):
            head, *rest = word.split("_")
            node = S.Name(tok.start, tok.end, head, tuple(rest),
                          sub_time=_subscript_time(rest[-1]))
        else:
            node = S.Name(tok.start, tok.end, word)
        if self.at("op", "(") and not self.peek().spaced:
            found = self._paren_time(required=False)
            if found is not None:
                node = replace(node, end=found[1], time=found[0])
        return node

    def _braced_subscript(self, tok):
        """h_{t-1}, z_{f,t}, W_{hh}: a name part before the last comma, a time after."""
        open_ = self.next()
        items = []
        while not self.at("op", "}"):
            item = self.next()
            if item.kind == "end" or len(items) > 16:
                self.fail(open_, "this '{' is never closed")
            items.append(item)
        close = self.next()
        core, rest = tok.value[:-1].split("_", 1) if "_" in tok.value[:-1] \
            else (tok.value[:-1], None)
        commas = [k for k, item in enumerate(items) if item.kind == "op" and item.value == ","]
        bounds = [-1] + commas + [len(items)]
        parts = [items[a + 1:b] for a, b in zip(bounds, bounds[1:])]
        time = time_from_items(_time_items(parts[-1]))
        words = ["".join(i.value for i in p) for p in parts]
        named = [p and all(i.kind in ("name", "number") for i in p) for p in parts]
        if not all(named[:-1]) or not (named[-1] or time is not None):
            self.fail(open_, "a subscript holds name parts and perhaps a time, as in W_{hh} "
                             "or z_{f,t-1}")
        # (a time alone stays a possible name part: the builder looks the name up first)
        return S.Name(tok.start, close.end, core, tuple(([rest] if rest else []) + words),
                      sub_time=time)

    def _named(self, tok):
        word = tok.value
        if word == "sum" and self.at("op", "("):
            return self.call_sum(tok)
        if word == "prev":
            self.expect("op", "(", "'(' after prev")
            name = self.expect("name", None, "a state, as in prev(h)")
            close = self.expect("op", ")", "')'")
            return S.Name(tok.start, close.end, name.value, (), index_symbol("t") - 1)
        if word == "eye":
            self.expect("op", "(", "'(' after eye")
            if not (self.at("name") or self.at("number")):
                self.fail(self.peek(), "eye takes a size, as in eye(D)")
            self.next()     # the size itself comes from what the identity multiplies
            close = self.expect("op", ")", "')'")
            return S.Constant(tok.start, close.end, "identity")
        if word.startswith("dL_d") and len(word) > 4:
            of = self._name(Tok("name", word[4:], tok.start + 4, tok.end, False))
            return S.Derivative(tok.start, of.end, of)
        base = word
        if base in FUNCTION_NAMES and (self.at("op", "(") or self.at("op", "'")):
            prime = 0
            if self.at("op", "'"):
                self.next()
                prime = 1
            open_ = self.expect("op", "(", f"'(' after {base}")
            arg = self.expr()
            if not self.at("op", ")"):
                self.fail(self.peek(), f"expected ')' to close {base}( at column "
                                       f"{open_.start + 1}")
            close = self.next()
            function = "sigmoid" if base == "sigma" else base
            return S.Apply(tok.start, close.end, function, arg, prime)
        return self._name(tok)


MARKS = {"*": "star", "+": "dagger"}


def _time_items(tokens):
    items = []
    for tok in tokens:
        if tok.kind == "number" and tok.value.isdigit():
            items.append(("num", int(tok.value)))
        elif tok.kind == "name":
            items.append(("sym", tok.value))
        elif tok.kind == "op" and tok.value in "+-":
            items.append((tok.value, tok.value))
        else:
            return []
    return items


def _subscript_time(word):
    """The time a subscript written in one word can be (t, T, 0, 12), or None."""
    if word.isdigit():
        return time_from_items([("num", int(word))])
    return time_from_items([("sym", word)]) if word in ("t", "T", "k", "tau") else None


def parse_text(text):
    """The syntax tree of an answer in the text syntax (see this module's docstring)."""
    return _Parser(text).answer()
