r"""Answers in LaTeX, as students type them: a tokenizer and a recursive-descent parser.

The grammar (lowest precedence first):

    answer   := expr [ '=' expr ]                  the left side names the result
    expr     := ['-'] mul (('+' | '-') mul)*
    mul      := juxt (op juxt)*                    op: \odot \circ * \ast (entry-wise),
                                                       \cdot \times (matrix product),
                                                       / \oslash \div (entry-wise quotient)
    juxt     := '-' juxt | factor+ [sum]          factors side by side: matrix product
    sum      := \sum [_{t=1}] [^{T}] mul           the sum takes the product after it
    factor   := primary (^{...} | _{...} | ')*    scripts: time, transpose, power
    primary  := number | letter | (expr) | [expr] | {expr} | \frac{..}{..}
              | \partial L / \partial v | \nabla_{v} L | function argument
              | \mathbf{..} \bm{..} \boldsymbol{..} (bold: ignored) | \hat{y}
              | \mathrm{..} \text{..} \operatorname{..} (a word: a name or a function)

Side by side binds tighter than the written operators: a \odot W b is
a \odot (W b). Scripts: ^{(t-1)}, ^{<t>}, ^{t-1}, _{t-1}, _t are times;
^\top, ^T, ^{\mathsf{T}}, ^{\intercal}, ' are transposes (so h^T is never the time
T: write h^{(T)} or h_T); ^2, ^{\circ 2} are entry-wise powers; ^{(t)\top}
is both. Sizing and spacing (\left \right \big \, \quad \displaystyle), $
and & are skipped. Nothing is ever evaluated: the parser only builds the
nodes of ``syntax.py``.
"""
import unicodedata
from dataclasses import replace
from fractions import Fraction

from . import syntax as S
from .syntax import (AnswerSyntaxError, GRAMMAR_DEPTH, MAX_CHARACTERS, MAX_DEPTH, MAX_DIGITS,
                     MAX_TOKENS)
from .times import index_symbol, time_from_items

SKIPPED = {",", ";", ":", "!", " ", "quad", "qquad", "enspace", "thinspace", "medspace",
           "thickspace", "negthinspace", "displaystyle", "textstyle", "limits", "nolimits",
           "left", "right", "middle", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl",
           "Bigr", "biggl", "biggr", "Biggl", "Biggr", "\\", "(", ")", "[", "]", "nonumber",
           "notag"}
ENTRYWISE = {"odot", "circ", "ast", "star"}
MATRIX_PRODUCT = {"cdot", "times", "bullet"}
DIVISION = {"oslash", "div"}        # entry by entry, as the sheets print 1/b: a \oslash b
BOLD = {"mathbf", "bm", "boldsymbol", "pmb", "mathbfit", "vec", "mathbb", "mathds", "bold",
        "mathbold", "symbf", "mathit", "mathnormal"}
WORDS = {"mathrm", "text", "textrm", "operatorname", "mathsf", "textsf", "texttt", "mathtt",
         "textit", "textbf", "mbox", "rm", "mathup"}
ACCENTS = {"hat": "hat", "widehat": "hat", "tilde": "tilde", "widetilde": "tilde",
           "bar": "bar", "overline": "bar", "check": "check", "breve": "breve", "dot": "dot",
           "ddot": "ddot", "acute": "acute", "grave": "grave", "mathring": "ring"}
# marks in a symbol's superscript (y^{\star}, the target of CS231n's notation)
MARKS = {("cmd", "star"): "star", ("cmd", "ast"): "star", ("sym", "*"): "star",
         ("cmd", "dagger"): "dagger"}
FUNCTION_COMMANDS = {"tanh": "tanh", "exp": "exp", "log": "log", "ln": "log", "sqrt": "sqrt",
                     "diag": "diag", "sigmoid": "sigmoid", "relu": "relu", "softmax": "softmax"}
# words (in \operatorname{...}, \mathrm{...}, \text{...}) that name a function
FUNCTION_WORDS = {"diag": "diag", "Diag": "diag", "tanh": "tanh", "sigmoid": "sigmoid",
                  "sigm": "sigmoid", "relu": "relu", "ReLU": "relu", "softmax": "softmax",
                  "log": "log", "ln": "log", "exp": "exp", "sqrt": "sqrt", "abs": "abs",
                  "softplus": "softplus", "recip": "reciprocal", "reciprocal": "reciprocal",
                  "step": "step", "sign": "sign", "sgn": "sign",
                  "log_softmax": "log_softmax", "logsoftmax": "log_softmax"}
TRANSPOSE_MARKS = {"top", "intercal", "prime", "mathsf{T}", "mathrm{T}", "text{T}", "T",
                   "textsf{T}", "operatorname{T}"}
LOSS_NAMES = {"L", "mathcal{L}", "ell", "E", "J", "mathscr{L}"}


class Tok:
    __slots__ = ("kind", "value", "start", "end")

    def __init__(self, kind, value, start, end):
        self.kind, self.value, self.start, self.end = kind, value, start, end

    def __repr__(self):
        return f"{self.kind}:{self.value}@{self.start}"

    def shown(self):
        if self.kind == "end":
            return "the end of the answer"
        return repr("\\" + self.value if self.kind == "cmd" else self.value)


def _unicode(ch):
    """The tokens a non-ASCII character stands for, or None."""
    table = {"⊙": ("cmd", "odot"), "∘": ("cmd", "circ"), "·": ("cmd", "cdot"),
             "⋅": ("cmd", "cdot"), "×": ("cmd", "times"), "−": ("sym", "-"),
             "–": ("sym", "-"), "⊤": ("cmd", "top"), "∂": ("cmd", "partial"),
             "∇": ("cmd", "nabla"), "∑": ("cmd", "sum"), "′": ("sym", "'"),
             "⟨": ("sym", "<"), "⟩": ("sym", ">"), "ℓ": ("cmd", "ell")}
    if ch in table:
        return [table[ch]]
    if ch == "ᵀ":
        return [("sym", "^"), ("cmd", "top")]
    if ch in "²³":
        return [("sym", "^"), ("num", "2" if ch == "²" else "3")]
    name = unicodedata.name(ch, "")
    if name.startswith("GREEK SMALL LETTER ") or name.startswith("GREEK CAPITAL LETTER "):
        word = name.split("LETTER ", 1)[1].lower()
        if name.startswith("GREEK CAPITAL"):
            if word == "sigma":
                return [("cmd", "sum")]
            word = word.capitalize()
        if word.replace("_", "").isalpha():
            return [("cmd", word.replace("final ", ""))]
    return None


def tokenize(text):
    if len(text) > MAX_CHARACTERS:
        raise AnswerSyntaxError(f"{len(text)} characters; an answer is at most "
                                f"{MAX_CHARACTERS}")
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if len(out) > MAX_TOKENS:
            raise AnswerSyntaxError(f"more than {MAX_TOKENS} symbols; an answer is at most "
                                    f"{MAX_TOKENS}", text, i)
        if ch.isspace() or ch in "$&~\u00a0":
            i += 1
            continue
        if ch == "\\":
            j = i + 1
            if j < n and text[j].isascii() and text[j].isalpha():
                while j < n and text[j].isascii() and text[j].isalpha():
                    j += 1
                name = text[i + 1:j]
            elif j < n:
                name, j = text[j], j + 1
            else:
                raise AnswerSyntaxError("a backslash at the end", text, i)
            if name in ("{", "}"):
                out.append(Tok("sym", "(" if name == "{" else ")", i, j))
            elif name in ("langle", "rangle"):
                out.append(Tok("sym", "<" if name == "langle" else ">", i, j))
            elif name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr",
                          "big", "Big", "bigg", "Bigg") and j < n and text[j] == ".":
                j += 1     # \left. : no delimiter
            elif name not in SKIPPED:
                out.append(Tok("cmd", name, i, j))
            i = j
            continue
        if ch.isascii() and ch.isalpha():
            out.append(Tok("letter", ch, i, i + 1))
            i += 1
            continue
        if ch.isdigit() or ch == "." and i + 1 < n and text[i + 1].isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j - i > MAX_DIGITS:
                raise AnswerSyntaxError(f"a number of {j - i} digits; at most {MAX_DIGITS}",
                                        text, i)
            out.append(Tok("num", text[i:j], i, j))
            i = j
            continue
        if ch in "+-*/=^_'(){}[],<>|.!":
            out.append(Tok("sym", ch, i, i + 1))
            i += 1
            continue
        mapped = _unicode(ch) if not ch.isascii() else None
        if mapped is None:
            raise AnswerSyntaxError(f"the character {ch!r} is not understood", text, i,
                                    lexical=True)
        out.extend(Tok(kind, value, i, i + 1) for kind, value in mapped)
        i += 1
    out.append(Tok("end", "", n, n))
    return out


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = tokenize(text)
        self.pos = 0
        self.depth = 0

    # -- tokens ----------------------------------------------------------------------
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

    def accept(self, kind, value=None):
        if self.at(kind, value):
            return self.next()
        return None

    def expect(self, kind, value, what):
        tok = self.peek()
        if not self.at(kind, value):
            self.fail(tok, f"expected {what}, found {tok.shown()}")
        return self.next()

    def fail(self, tok, message):
        col = tok.start if isinstance(tok, Tok) else tok
        raise AnswerSyntaxError(message, self.text, col)

    def enter(self):
        # each bracket level passes about five rules of the grammar
        self.depth += 1
        if self.depth > GRAMMAR_DEPTH:
            self.fail(self.peek(), f"nested more than {MAX_DEPTH} deep")

    def leave(self):
        self.depth -= 1

    # -- the grammar -------------------------------------------------------------------
    def answer(self):
        lhs = self.expr()
        if self.at("sym", "="):
            self.next()
            rhs = self.expr()
            if self.at("sym", "="):
                self.fail(self.peek(), "a second '='; give one formula (optionally "
                                       "'name = formula')")
            node = S.Equation(lhs.start, rhs.end, lhs, rhs)
        else:
            node = lhs
        if not self.at("end"):
            self.fail(self.peek(), f"unexpected {self.peek().shown()}")
        return node

    def expr(self):
        self.enter()
        start = self.peek()
        if self.at("sym", "+"):
            self.next()
        node = self.mul()
        while self.at("sym", "+") or self.at("sym", "-"):
            op = self.next()
            right = self.mul()
            node = S.Binary(node.start, right.end, op.value, node, right, op.start)
        self.leave()
        del start
        return node

    def _mul_op(self):
        tok = self.peek()
        if tok.kind == "cmd" and tok.value in ENTRYWISE or tok.kind == "sym" and tok.value == "*":
            return "*"
        if tok.kind == "cmd" and tok.value in MATRIX_PRODUCT:
            return "@"
        if tok.kind == "sym" and tok.value == "/" or tok.kind == "cmd" and tok.value in DIVISION:
            return "/"
        return None

    def mul(self):
        self.enter()
        node = self.juxt()
        while self._mul_op():
            op = self._mul_op()
            tok = self.next()
            right = self.juxt()
            node = S.Binary(node.start, right.end, op, node, right, tok.start)
        self.leave()
        return node

    def _starts_factor(self):
        tok = self.peek()
        if tok.kind in ("letter", "num"):
            return True
        if tok.kind == "sym":
            return tok.value in "([{"
        if tok.kind == "cmd":
            return not (tok.value in ENTRYWISE or tok.value in MATRIX_PRODUCT
                        or tok.value in DIVISION or tok.value in ("top", "intercal", "prime"))
        return False

    def juxt(self):
        self.enter()
        if self.at("sym", "-"):
            tok = self.next()
            arg = self.juxt()
            self.leave()
            return S.Negate(tok.start, arg.end, arg)
        if not self._starts_factor():
            tok = self.peek()
            self.fail(tok, f"expected a term, found {tok.shown()}")
        factors = []
        while self._starts_factor():
            if self.at("cmd", "sum"):
                factors.append(self.sum())
                break
            factors.append(self.factor())
        node = factors[0]
        for f in factors[1:]:
            node = S.Binary(node.start, f.end, "@", node, f, f.start)
        self.leave()
        return node

    # -- sums --------------------------------------------------------------------------
    def sum(self):
        tok = self.next()  # \sum
        index, lower, upper = None, None, None
        for _ in range(2):
            if self.at("sym", "_"):
                self.next()
                index, lower = self._sum_lower()
            elif self.at("sym", "^"):
                self.next()
                upper = self._time_group("the upper limit of the sum")
        body = self.mul()
        return S.Sum(tok.start, body.end, index or "t", lower, upper, body)

    def _group_tokens(self):
        """The tokens of {...} or of a single token, for scripts and limits."""
        if self.at("sym", "{"):
            open_ = self.next()
            level, items = 1, []
            while True:
                tok = self.next()
                if tok.kind == "end":
                    self.fail(open_, "this '{' is never closed")
                if tok.kind == "sym" and tok.value == "{":
                    level += 1
                elif tok.kind == "sym" and tok.value == "}":
                    level -= 1
                    if level == 0:
                        return items, open_, tok
                items.append(tok)
        tok = self.next()
        if tok.kind == "end":
            self.fail(tok, "a script or limit is missing at the end")
        return [tok], tok, tok

    def _sum_lower(self):
        items, first, last = self._group_tokens()
        if not items:
            self.fail(first, "an empty subscript on \\sum")
        if not (items[0].kind == "letter" or items[0].kind == "cmd" and items[0].value == "tau"):
            self.fail(items[0], "the sum's index must be a letter such as t or k")
        index = items[0].value
        if len(items) == 1:
            return index, None
        if not (items[1].kind == "sym" and items[1].value == "="):
            self.fail(items[1], "write the sum's range as _{t=1}^{T}")
        lower = self._time(items[2:], items[1], "the lower limit of the sum")
        return index, lower

    def _time_group(self, what):
        items, first, last = self._group_tokens()
        return self._time(items, first, what)

    def _time(self, items, near, what):
        time = time_from_items(_time_items(items))
        if time is None:
            where = items[0] if items else near
            self.fail(where, f"{what} is not a time (write t, t-1, T, 1, ...)")
        return time

    # -- factors and scripts -------------------------------------------------------------
    def factor(self):
        self.enter()
        node = self.primary()
        while True:
            if self.at("sym", "^"):
                hat = self.next()
                node = self._superscript(node, hat)
            elif self.at("sym", "_"):
                bar = self.next()
                node = self._subscript(node, bar)
            elif self.at("sym", "'"):
                tick = self.next()
                node = S.Transpose(node.start, tick.end, node)
            else:
                break
        self.leave()
        return node

    def _script_items(self):
        """The tokens of a superscript; ^( t ) without braces is read as ^{(t)}."""
        if self.at("sym", "("):
            open_ = self.next()
            items = [open_]
            while not self.at("sym", ")"):
                tok = self.next()
                if tok.kind == "end" or len(items) > 12:
                    self.fail(open_, "this '(' in a superscript is never closed")
                items.append(tok)
            close = self.next()
            return items + [close], open_, close
        return self._group_tokens()

    def _superscript(self, node, hat):
        items, first, last = self._script_items()
        if not items:
            return node         # ^{}: nothing
        marks = []
        while items and (items[0].kind, items[0].value) in MARKS:
            marks.append(MARKS[(items[0].kind, items[0].value)])
            items = items[1:]
        if marks:
            if not isinstance(node, S.Name) or node.time is not None:
                self.fail(first, "a mark such as \\star belongs on a name, e.g. y^{\\star}")
            node = replace(node, end=last.end, marks=node.marks + tuple(marks))
            if not items:
                return node
            first = items[0]
        time, transpose, power = _read_superscript(items)
        if time is None and not transpose and power is None:
            shown = self.text[first.start:last.end] if items else "{}"
            self.fail(first, f"the superscript {shown!r} is not a time such as (t-1), a "
                             "transpose (\\top, T) or a small power such as 2")
        end = last.end
        if power is not None:
            if isinstance(power, str):
                self.fail(first, power)
            entrywise = (items[0].kind, items[0].value) in (("cmd", "circ"), ("cmd", "odot"))
            return S.Power(node.start, end, node, power, entrywise)
        if time is not None:
            if not isinstance(node, S.Name):
                self.fail(first, "a time such as (t) belongs on a name, e.g. h^{(t)}")
            if node.time is not None:
                self.fail(first, f"{node.core} has two times")
            node = replace(node, end=end, time=time)
        if transpose:
            node = S.Transpose(node.start, end, node)
        return node

    def _subscript(self, node, bar):
        items, first, last = self._group_tokens()
        if isinstance(node, S.Transpose) and isinstance(node.arg, S.Name):   # h^\top_{t}
            named = self._subscripted(node.arg, bar, items, first, last)
            return S.Transpose(node.start, last.end, named)
        return self._subscripted(node, bar, items, first, last)

    def _subscripted(self, node, bar, items, first, last):
        if not isinstance(node, S.Name):
            self.fail(bar, "a subscript belongs on a name, e.g. W_f or h_{t-1}")
        if node.subs or node.sub_time is not None:
            self.fail(bar, f"{node.core} has two subscripts")
        commas = [k for k, tok in enumerate(items) if tok.kind == "sym" and tok.value == ","]
        if commas:      # a_{0,0} (the name a0_0), z_{f,t-1}: name parts, perhaps a time
            bounds = [-1] + commas + [len(items)]
            parts = [items[a + 1:b] for a, b in zip(bounds, bounds[1:])]
            words = [_word(p) for p in parts]
            time = time_from_items(_time_items(parts[-1]))
            if all(w is not None for w in words[:-1]) and (words[-1] is not None
                                                            or time is not None):
                shown = words[-1] if words[-1] is not None else \
                    "".join(tok.value for tok in parts[-1])
                return replace(node, end=last.end, subs=tuple(words[:-1]) + (shown,),
                               sub_time=time)
        text = _word(items)
        time = time_from_items(_time_items(items))
        if text is None and time is None:
            self.fail(first, "the subscript is neither a name part (W_f) nor a time (h_{t-1})")
        return replace(node, end=last.end, subs=(text,) if text else (), sub_time=time)

    # -- primaries ---------------------------------------------------------------------
    def primary(self):
        self.enter()
        try:
            return self._primary()
        finally:
            self.leave()

    def _bracketed(self, open_value, close_value):
        open_ = self.next()
        inner = self.expr()
        if not self.at("sym", close_value):
            self.fail(self.peek(), f"expected {close_value!r} to close the {open_value!r} at "
                                   f"column {open_.start + 1}, found {self.peek().shown()}")
        close = self.next()
        return _spanned(inner, open_.start, close.end)

    def _primary(self):
        tok = self.peek()
        if tok.kind == "num":
            self.next()
            den = self.peek(1)
            if self.at("sym", "/") and den.kind == "num" and self.peek().start == tok.end \
                    and den.start == tok.end + 1:   # 1/2 written together: one number
                self.next()
                self.next()
                if Fraction(den.value) == 0:
                    self.fail(den, "division by zero")
                return S.Number(tok.start, den.end, Fraction(tok.value) / Fraction(den.value))
            return S.Number(tok.start, tok.end, Fraction(tok.value))
        if tok.kind == "letter":
            word = self._function_word()
            if word is not None:
                return word
            self.next()
            return S.Name(tok.start, tok.end, tok.value)
        if tok.kind == "sym":
            if tok.value in "([{":
                close = {"(": ")", "[": "]", "{": "}"}[tok.value]
                return self._bracketed(tok.value, close)
            self.fail(tok, f"unexpected {tok.shown()}")
        if tok.kind == "cmd":
            return self._command(tok)
        self.fail(tok, f"expected a term, found {tok.shown()}")

    def _command(self, tok):
        name = tok.value
        if name in ("frac", "dfrac", "tfrac"):
            return self._frac()
        if name == "partial":
            return self._inline_derivative()
        if name == "nabla":
            return self._nabla()
        if name == "sum":
            return self.sum()
        if name in BOLD:
            return self._bold()
        if name in WORDS:
            return self._word_command()
        if name in ACCENTS:
            self.next()
            inner = self._braced_name(tok, f"\\{name}")
            return replace(inner, start=tok.start, core=f"{ACCENTS[name]}({inner.core})")
        if name == "mathcal" or name == "mathscr":
            self.next()
            items, first, last = self._group_tokens()
            word = _word(items)
            if not word:
                self.fail(first, f"\\{name} takes a letter")
            return S.Name(tok.start, last.end, f"{name}{{{word}}}")
        if name == "sigma" and self._applied(1):
            self.next()
            return self._application(tok, "sigmoid")
        if name in FUNCTION_COMMANDS:
            self.next()
            return self._application(tok, FUNCTION_COMMANDS[name])
        if name in ("top", "intercal", "prime"):
            self.fail(tok, f"\\{name} must follow ^, e.g. W^\\top")
        if name == "ell" or name.isalpha() and len(name) > 1 and _is_greek(name):
            self.next()
            return S.Name(tok.start, tok.end, name)
        self.fail(tok, f"the command \\{name} is not understood here")

    def _function_word(self):
        """diag(v), tanh(z), sigma'(z) typed without a backslash: letters side by side
        that spell a function, right before its argument or its mark."""
        letters, k = [], 0
        while self.at("letter", None, k) and (k == 0 or self.peek(k).start == self.peek(k - 1).end):
            letters.append(self.peek(k).value)
            k += 1
        word = "".join(letters)
        follower = self.peek(k)
        if len(word) < 3 or follower.start != self.peek(k - 1).end:
            return None
        for n in range(len(word), 2, -1):      # the longest function word the letters start with
            name = FUNCTION_WORDS.get(word[:n]) or ("sigmoid" if word[:n] == "sigma" else None)
            after = self.peek(n)
            if name and n == len(word) and after.kind == "sym" and after.value in "('[":
                tok = self.peek()
                for _ in range(n):
                    self.next()
                return self._application(tok, name)
        return None

    def _applied(self, k):
        """Does the token k ahead start a function's argument or mark (', ^)?"""
        tok = self.peek(k)
        return tok.kind == "sym" and tok.value in "('^"

    # a function: \tanh(z), \tanh z, \tanh'(z), \sigma'(z), \tanh^2(z), \operatorname{diag}(v)
    def _application(self, tok, function):
        prime, power = 0, None
        while True:
            if self.at("sym", "'"):
                self.next()
                prime += 1
            elif self.at("sym", "^"):
                hat = self.next()
                items, first, last = self._group_tokens()
                values = [(i.kind, i.value) for i in items]
                if values and all(v == ("cmd", "prime") or v == ("sym", "'") for v in values):
                    prime += len(values)
                elif len(values) == 1 and values[0][0] == "num" and values[0][1].isdigit() \
                        and 1 <= int(values[0][1]) <= 4:
                    power = int(values[0][1])
                else:
                    self.fail(hat, f"after {function}, ^ takes ' (a derivative) or a power "
                                   "2, 3 or 4")
            else:
                break
        if prime > 1:
            self.fail(tok, "only first derivatives such as tanh' are understood")
        if function == "sqrt" and tok.kind == "cmd" and self.at("sym", "{"):
            arg = self._bracketed("{", "}")
        elif self.at("sym", "(") or self.at("sym", "[") or self.at("sym", "{"):
            open_ = self.peek().value
            arg = self._bracketed(open_, {"(": ")", "[": "]", "{": "}"}[open_])
        elif self._starts_factor() and not self.at("cmd", "sum"):
            arg = self.factor()
        else:
            self.fail(self.peek(), f"{function} needs an argument, e.g. {function}(z)")
        return S.Apply(tok.start, arg.end, function, arg, prime, power)

    def _bold(self):
        tok = self.next()
        items, first, last = self._group_tokens()
        values = [(i.kind, i.value) for i in items]
        if values in ([("num", "1")], [("num", "0")]):
            kind = "ones" if values[0][1] == "1" else "zero"
            return S.Constant(tok.start, last.end, kind)
        word = _word(items)
        if word and len(word) > 1 and word.isalpha():     # \mathbf{Wxh}: one name
            return S.Name(tok.start, last.end, word, bold=True)
        inner = self._reparse(items, first)
        if isinstance(inner, S.Name):
            return replace(inner, start=tok.start, end=last.end, bold=True)
        return _spanned(inner, tok.start, last.end)

    def _reparse(self, items, near):
        """Parse the tokens of a group as an expression of their own."""
        if not items:
            self.fail(near, "an empty group")
        sub = _Parser.__new__(_Parser)
        sub.text, sub.depth = self.text, self.depth
        sub.toks = list(items) + [Tok("end", "", items[-1].end, items[-1].end)]
        sub.pos = 0
        node = sub.expr()
        if not sub.at("end"):
            sub.fail(sub.peek(), f"unexpected {sub.peek().shown()}")
        return node

    def _braced_name(self, tok, what):
        items, first, last = self._group_tokens()
        if len(items) == 1 and items[0].kind == "letter":
            return S.Name(items[0].start, last.end, items[0].value)
        inner = self._reparse(items, first) if items else None
        if not isinstance(inner, S.Name):
            self.fail(first, f"{what} takes a letter, e.g. {what}{{y}}")
        return replace(inner, end=last.end)

    def _word_command(self):
        tok = self.next()
        items, first, last = self._group_tokens()
        word = _word(items)
        if word is None:
            self.fail(first, f"\\{tok.value}{{...}} must hold a word such as diag")
        if word in FUNCTION_WORDS:
            return self._application(tok, FUNCTION_WORDS[word])
        if word in ("1", "0"):
            return S.Constant(tok.start, last.end, "ones" if word == "1" else "zero")
        return S.Name(tok.start, last.end, word)

    # -- derivatives ---------------------------------------------------------------------
    def _frac(self):
        tok = self.next()
        num_items, nfirst, nlast = self._group_tokens()
        den_items, dfirst, dlast = self._group_tokens()
        d_num, d_den = _d_mark(num_items), _d_mark(den_items)
        if d_num and d_den:
            loss_time = self._loss(num_items[d_num:], nfirst)
            of = self._reparse(den_items[d_den:], dfirst)
            of = self._variable(of, dfirst)
            return S.Derivative(tok.start, dlast.end, of, loss_time)
        num = self._reparse(num_items, nfirst)
        den = self._reparse(den_items, dfirst)
        return S.Binary(tok.start, dlast.end, "/", num, den, tok.start)

    def _variable(self, node, near):
        if not isinstance(node, S.Name):
            self.fail(near, "the derivative must be with respect to one quantity, e.g. "
                            "\\partial h^{(t)}")
        return node

    def _loss(self, items, near):
        """The numerator of a derivative: L, \\mathcal{L}, L^{(t)}, L_t; its time or None."""
        if not items:
            self.fail(near, "the derivative of what? write \\partial L")
        node = self._reparse(items, near)
        if not isinstance(node, S.Name) or node.core not in LOSS_NAMES or node.subs and \
                node.sub_time is None:
            self.fail(items[0], "the numerator of a derivative must be the loss L "
                                "(or L^{(t)}, the loss of one step)")
        return node.time if node.time is not None else node.sub_time

    def _inline_derivative(self):
        """\\partial L / \\partial h^{(t)}, as the sheet prints a derivative inline."""
        tok = self.next()
        loss = self.factor()
        if not isinstance(loss, S.Name) or loss.core not in LOSS_NAMES:
            self.fail(loss.start, "after \\partial, the loss L (\\partial L / \\partial h)")
        self.expect("sym", "/", "'/' in \\partial L / \\partial h")
        self.expect("cmd", "partial", "\\partial after '/'")
        of = self._variable(self.factor(), self.peek())
        return S.Derivative(tok.start, of.end, of, loss.time if loss.time is not None
                            else loss.sub_time)

    def _nabla(self):
        """\\nabla_{h^{(t)}} L: Goodfellow's notation for dL/dh^(t)."""
        tok = self.next()
        self.expect("sym", "_", "_ after \\nabla, as in \\nabla_{h^{(t)}} L")
        items, first, last = self._group_tokens()
        of = self._variable(self._reparse(items, first), first)
        loss = self.primary()
        if not isinstance(loss, S.Name) or loss.core not in LOSS_NAMES:
            self.fail(loss.start, "\\nabla_{v} takes the loss L: \\nabla_{v} L")
        return S.Derivative(tok.start, loss.end, of, None)


def _spanned(node, start, end):
    """``node`` with its columns widened to its brackets (for messages)."""
    values = {f: getattr(node, f) for f in node.__dataclass_fields__}
    values.update(start=start, end=end)
    return type(node)(**values)


def _is_greek(name):
    try:
        return unicodedata.lookup(f"GREEK SMALL LETTER {name.upper()}") is not None
    except KeyError:
        try:
            return unicodedata.lookup(f"GREEK CAPITAL LETTER {name.upper()}") is not None
        except KeyError:
            return name in ("varepsilon", "vartheta", "varphi", "varsigma", "varrho")


def _d_mark(items):
    """How many tokens make the 'd' of a derivative at the start of ``items`` (0: none):
    \\partial, d, \\mathrm{d}, \\text{d}."""
    if not items:
        return 0
    first = items[0]
    if first.kind == "cmd" and first.value == "partial":
        return 1
    if first.kind == "letter" and first.value == "d" and len(items) > 1:
        return 1
    if first.kind == "cmd" and first.value in ("mathrm", "text", "operatorname") and \
            len(items) >= 4 and items[1].value == "{" and items[2].value == "d" \
            and items[3].value == "}":
        return 4
    return 0


def _word(items):
    """The letters, digits and _ of a script or a word command, as one string; None
    if the tokens are anything else. \\mathrm{f} inside is read as f."""
    out = []
    skip = {"mathrm", "text", "textrm", "mathit", "mathsf", "operatorname", "mathbf", "bm",
            "boldsymbol"}
    i = 0
    while i < len(items):
        tok = items[i]
        i += 1
        if tok.kind == "cmd" and tok.value in ACCENTS and i < len(items):   # a_{\tilde{h}}
            if items[i].kind == "sym" and items[i].value == "{":
                level, j = 1, i + 1
                while j < len(items) and level:
                    level += {"{": 1, "}": -1}.get(items[j].value if items[j].kind == "sym"
                                                   else "", 0)
                    j += 1
                inner, i = _word(items[i + 1:j - 1]), j
            else:
                inner, i = _word(items[i:i + 1]), i + 1
            if inner is None:
                return None
            out.append(f"{ACCENTS[tok.value]}({inner})")
        elif tok.kind in ("letter", "num"):
            out.append(tok.value)
        elif tok.kind == "sym" and tok.value in ("_", "{", "}", ","):
            if tok.value == "_":
                out.append("_")
        elif tok.kind == "cmd" and tok.value in skip:
            continue
        elif tok.kind == "cmd" and _is_greek(tok.value):
            out.append(tok.value)
        else:
            return None
    return "".join(out) or None


def _time_items(items):
    """Tokens of a time as (kind, value) for ``time_from_items``; parentheses and
    angle brackets around it are dropped."""
    values = [(t.kind, t.value) for t in items]
    if len(values) >= 2 and values[0] in (("sym", "("), ("sym", "<")) and \
            values[-1] in (("sym", ")"), ("sym", ">")):
        values = values[1:-1]
    out = []
    for kind, value in values:
        if kind == "num":
            if not value.isdigit():
                return []
            out.append(("num", int(value)))
        elif kind == "letter":
            out.append(("sym", value))
        elif kind == "cmd" and value == "tau":
            out.append(("sym", "tau"))
        elif kind == "sym" and value in "+-":
            out.append((value, value))
        else:
            return []
    return out


def _read_superscript(items):
    """(time, transpose, power) of a superscript's tokens; power may be an error message."""
    values = [(t.kind, t.value) for t in items]
    # a transpose mark at the end: (t-1)\top, (t)T, \top, T, ', \mathsf{T}
    transpose = False
    text = "".join(v if k != "cmd" else "\\" + v for k, v in values)
    for mark in ("\\top", "\\intercal", "\\prime", "'", "\\mathsf{T}", "\\mathrm{T}",
                 "\\text{T}", "\\textsf{T}", "\\operatorname{T}", "T"):
        if text.endswith(mark):
            rest = text[:-len(mark)]
            if mark == "T" and rest and rest[-1] not in ")>":
                continue   # ^{t-T}? not a transpose
            transpose, text = True, rest
            # drop the tokens of the mark
            count = {"\\top": 1, "\\intercal": 1, "\\prime": 1, "'": 1, "T": 1}.get(mark, 4)
            values = values[:-count]
            break
    if not values:
        return None, transpose, None
    if values[0] == ("cmd", "circ") or values[0] == ("cmd", "odot"):
        values = values[1:]
        if len(values) == 1 and values[0][0] == "num" and values[0][1].isdigit():
            return None, transpose, _power(int(values[0][1]))
        return None, False, "an entry-wise power ^{\\circ n} needs a small integer n"
    if all(k == "num" for k, _ in values) and len(values) == 1 and not transpose:
        v = values[0][1]
        if not v.isdigit():
            return None, False, f"the exponent {v} is not a positive integer"
        return None, False, _power(int(v))
    if values[0] == ("sym", "-") and len(values) == 2 and values[1][0] == "num":
        return None, False, "inverses (^{-1}) are not part of a BPTT gradient"
    has_brackets = values[0] in (("sym", "("), ("sym", "<"))
    time = time_from_items(_time_items([_T(k, v) for k, v in values]))
    if time is None:
        return None, False, None
    if not has_brackets and time == index_symbol("T") and not transpose:
        return None, True, None   # ^{T} alone is a transpose
    return time, transpose, None


def _power(n):
    if n < 1:
        return "the exponent must be a positive integer"
    if n > S.MAX_POWER:
        return f"the exponent {n} is too large (at most {S.MAX_POWER})"
    return n


class _T:
    """A stand-in token for ``_time_items`` (kind, value)."""
    __slots__ = ("kind", "value")

    def __init__(self, kind, value):
        self.kind, self.value = kind, value


def parse_latex(text):
    """The syntax tree of a LaTeX answer (see this module's docstring)."""
    return _Parser(text).answer()
