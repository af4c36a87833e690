"""How a name of a cell is typeset: W_hx as W_{hx}, Wz as W_z, yhat as \\hat{y}, alpha as
\\alpha; and the checked LaTeX of a symbol a user gives (a notation profile).

A symbol is kept as ``Symbol(core, sub, sup)`` so that the printer can add the time
(``h^{(t)}`` or ``h_{t}``; ``W_{hh,t}`` for a name that has a subscript of its own)
and the transpose sign. Users' LaTeX is accepted only from a small grammar (letters,
digits, subscripts, superscripts, primes, Greek letters, accents and a few font
commands): a symbol cannot run TeX code.
"""
import re
from dataclasses import dataclass

__all__ = ["Symbol", "default_symbol", "parse_symbol", "SymbolError"]

GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
         "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "varpi", "rho",
         "varrho", "sigma", "varsigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
         "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
         "Psi", "Omega")
ACCENTS = ("hat", "tilde", "bar", "check", "breve", "vec", "dot", "ddot", "acute", "grave",
           "mathring", "widehat", "widetilde", "overline")
FONTS = ("mathrm", "mathit", "mathsf", "mathcal", "mathbb", "mathfrak", "mathtt")
MARKS = ("prime", "star", "ast", "dagger", "circ", "natural", "sharp", "flat", "ell",
         "partial", "infty", "imath", "jmath")
ALLOWED = frozenset(GREEK + ACCENTS + FONTS + MARKS)
MAX_LENGTH = 60

# a name of a cell that reads better as a symbol than letter by letter
_CONVENTIONAL = {"dt": r"\Delta t", "eps": r"\epsilon", "lam": r"\lambda"}
# Greek names SymPy would translate that a cell means as letters (the peephole
# weight pi of a gate i is p_i, not the number pi)
_NOT_GREEK = {"pi"}
_SUFFIX_ACCENTS = {"hat": "hat", "tilde": "tilde", "bar": "bar"}


class SymbolError(ValueError):
    """A symbol's LaTeX outside the accepted grammar."""


@dataclass(frozen=True)
class Symbol:
    """A typeset name: ``core`` (e.g. ``W``, ``\\hat{y}``), its subscript and superscript
    (LaTeX, without braces; empty when there is none)."""
    core: str
    sub: str = ""
    sup: str = ""

    def latex(self):
        out = self.core
        if self.sub:
            out += "_{%s}" % self.sub
        if self.sup:
            out += "^{%s}" % self.sup
        return out


def _greek(word):
    return "\\" + word if word in GREEK and word not in _NOT_GREEK else None


def _letters(word):
    """``word`` as a core: one letter, a Greek letter, a conventional name, or upright."""
    if len(word) == 1:
        return word
    greek = _greek(word)
    if greek:
        return greek
    if word in _CONVENTIONAL:
        return _CONVENTIONAL[word]
    for suffix, accent in _SUFFIX_ACCENTS.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            base = _letters(word[:-len(suffix)])
            return "\\%s{%s}" % (accent, base)
    return None


def _word(word):
    """A part of a name (between underscores) as LaTeX: letters, Greek, or upright text."""
    if word.isdigit():
        return word
    simple = _letters(word)
    if simple is not None:
        return simple
    if word.isalpha() and len(word) <= 3:  # W_hx: the roles of a matrix, letter by letter
        return word
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", word)
    if m:
        return _word(m.group(1)) + m.group(2)
    return r"\mathrm{%s}" % word


def default_symbol(name):
    """The symbol of a cell's name: ``W_hx`` and ``Whx`` are W_{hx}, ``Wz`` W_{z},
    ``bh`` b_{h}, ``V1`` V_{1}, ``alpha_r`` \\alpha_{r}, ``yhat`` \\hat{y}, ``dt``
    \\Delta t; a longer lowercase word is set upright (``gate``)."""
    parts = name.split("_")
    head, rest = parts[0], [p for p in parts[1:] if p]
    if not head:  # a name cannot start with "_"; kept as it is
        return Symbol(r"\mathrm{%s}" % name.replace("_", r"\_"))
    core = _letters(head)
    subs = []
    if core is None:
        m = re.fullmatch(r"([A-Za-z]+?)(\d+)", head)
        if m and _letters(m.group(1)) is not None:
            core, subs = _letters(m.group(1)), [m.group(2)]
        elif head[0].isupper() and head[1:].isalpha() and len(head) <= 7:
            core, subs = head[0], [head[1:]]          # Wz, Whh, Wout: a matrix and its role
        elif head[0].islower() and head.isalpha() and len(head) == 2:
            core, subs = head[0], [head[1:]]          # bh, vf: a vector and its role
        elif re.fullmatch(r"[A-Za-z][A-Za-z]?\d+", head):
            core, subs = _word(head[:-len(re.search(r"\d+$", head).group())]), \
                [re.search(r"\d+$", head).group()]
        else:
            core = r"\mathrm{%s}" % head
    subs += [_word(p) for p in rest]
    return Symbol(core, ",".join(subs))


# ---- users' LaTeX -------------------------------------------------------------------
_TOKEN = re.compile(r"\\([A-Za-z]+)|([A-Za-z0-9',])|([_^{}])|(\s+)|(.)")


def _check(text, where):
    if not isinstance(text, str) or not text.strip():
        raise SymbolError(f"{where}: expected the LaTeX of a symbol such as 'W_{{hh}}', "
                          f"got {text!r}")
    if len(text) > MAX_LENGTH:
        raise SymbolError(f"{where}: {text[:20]!r}... is longer than {MAX_LENGTH} characters")
    depth = 0
    for m in _TOKEN.finditer(text):
        command, _, brace, _, other = m.groups()
        if other is not None:
            raise SymbolError(f"{where}: the character {other!r} is not allowed in a symbol "
                              f"(letters, digits, commas, _, ^, braces and commands such as \\hat)")
        if command is not None and command not in ALLOWED:
            raise SymbolError(f"{where}: the command \\{command} is not allowed in a symbol; "
                              "allowed: Greek letters, accents (\\hat, \\tilde, ...), "
                              "\\mathrm and the other math fonts, \\prime")
        if brace == "{":
            depth += 1
        elif brace == "}":
            depth -= 1
            if depth < 0:
                raise SymbolError(f"{where}: unbalanced braces in {text!r}")
    if depth:
        raise SymbolError(f"{where}: unbalanced braces in {text!r}")


def _split_script(text):
    """(core, sub, sup) of LaTeX such as ``W_{hh}``, ``\\tilde{c}^{\\prime}``."""
    core, scripts, i, depth, start = None, {"_": "", "^": ""}, 0, 0, 0
    marks = []
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "\\":
            m = re.match(r"\\[A-Za-z]+", text[i:])
            i += len(m.group()) if m else 2
            continue
        elif ch in "_^" and depth == 0:
            marks.append(i)
        i += 1
    if not marks:
        return text.strip(), "", ""
    core = text[:marks[0]].strip()
    for k, at in enumerate(marks):
        end = marks[k + 1] if k + 1 < len(marks) else len(text)
        body = text[at + 1:end].strip()
        if body.startswith("{") and body.endswith("}") and _balanced_inside(body):
            body = body[1:-1]
        scripts[text[at]] = (scripts[text[at]] + "," if scripts[text[at]] else "") + body
    return core, scripts["_"], scripts["^"]


def _balanced_inside(body):
    depth = 0
    for k, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0 and k < len(body) - 1:
            return False
    return True


def parse_symbol(text, where="symbol"):
    """The ``Symbol`` of checked LaTeX; ``SymbolError`` (a ValueError naming ``where``)
    when it is outside the grammar."""
    _check(text, where)
    core, sub, sup = _split_script(text)
    if not core:
        raise SymbolError(f"{where}: {text!r} has a subscript or superscript but no symbol")
    return Symbol(core, sub, sup)
