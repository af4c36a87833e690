"""How wide a printed formula is on the page: a small model of TeX's math layout.

``tex_width(latex)`` reads the LaTeX that the printer made (it never changes it) and
adds up what TeX would set: the widths of the glyphs of Computer Modern, the font of
the documents (the tables below are the character widths of the fonts' TFM files
cmmi10, cmmib10, cmr10, cmbx10, cmsy10 and cmex10, in ems, as ``tftopl`` prints them),
the spaces TeX puts around operators and relations, fractions, big operators with
limits, delimiters, sub- and superscripts at script size. The result is in points at
the documents' 11 pt; the line breaker compares it with the room on the page, and
the tests compile what it lets through and check TeX's log for overfull lines.
"""
import re

__all__ = ["tex_width", "FONT_SIZE", "TEXT_WIDTH", "em"]

FONT_SIZE = 10.95          # \normalsize of the 11pt article class, in pt
SIZES = {"D": 10.95, "T": 10.95, "S": 8.0, "SS": 6.0}
TEXT_WIDTH = 483.69687     # \textwidth of A4 paper with 2 cm margins, in pt
_SCRIPT_WIDER = {"D": 1.0, "T": 1.0, "S": 1.05, "SS": 1.1}  # cmmi8/cmmi6 are wider per em

ITALIC = {'a': 0.529, 'b': 0.429, 'c': 0.433, 'd': 0.52, 'e': 0.466, 'f': 0.597, 'g': 0.513,
          'h': 0.576, 'i': 0.345, 'j': 0.469, 'k': 0.552, 'l': 0.318, 'm': 0.878, 'n': 0.6,
          'o': 0.485, 'p': 0.503, 'q': 0.482, 'r': 0.479, 's': 0.469, 't': 0.361, 'u': 0.572,
          'v': 0.521, 'w': 0.743, 'x': 0.572, 'y': 0.526, 'z': 0.509, 'A': 0.75, 'B': 0.809,
          'C': 0.786, 'D': 0.856, 'E': 0.796, 'F': 0.782, 'G': 0.786, 'H': 0.912, 'I': 0.518,
          'J': 0.651, 'K': 0.921, 'L': 0.681, 'M': 1.079, 'N': 0.912, 'O': 0.791, 'P': 0.781,
          'Q': 0.791, 'R': 0.767, 'S': 0.671, 'T': 0.723, 'U': 0.792, 'V': 0.806, 'W': 1.083,
          'X': 0.907, 'Y': 0.803, 'Z': 0.754}
BOLD_ITALIC = {'a': 0.633, 'b': 0.521, 'c': 0.513, 'd': 0.61, 'e': 0.554, 'f': 0.678,
               'g': 0.582, 'h': 0.668, 'i': 0.405, 'j': 0.533, 'k': 0.622, 'l': 0.357,
               'm': 1.032, 'n': 0.713, 'o': 0.585, 'p': 0.601, 'q': 0.579, 'r': 0.561,
               's': 0.531, 't': 0.415, 'u': 0.681, 'v': 0.604, 'w': 0.859, 'x': 0.659,
               'y': 0.627, 'z': 0.597, 'A': 0.869, 'B': 0.915, 'C': 0.887, 'D': 0.97,
               'E': 0.865, 'F': 0.849, 'G': 0.887, 'H': 1.065, 'I': 0.589, 'J': 0.732,
               'K': 1.041, 'L': 0.756, 'M': 1.256, 'N': 1.065, 'O': 0.869, 'P': 0.883,
               'Q': 0.869, 'R': 0.877, 'S': 0.747, 'T': 0.796, 'U': 0.915, 'V': 0.933,
               'W': 1.253, 'X': 1.025, 'Y': 0.93, 'Z': 0.842}
ROMAN = {'a': 0.5, 'b': 0.556, 'c': 0.444, 'd': 0.556, 'e': 0.444, 'f': 0.306, 'g': 0.5,
         'h': 0.556, 'i': 0.278, 'j': 0.306, 'k': 0.528, 'l': 0.278, 'm': 0.833, 'n': 0.556,
         'o': 0.5, 'p': 0.556, 'q': 0.528, 'r': 0.392, 's': 0.394, 't': 0.389, 'u': 0.556,
         'v': 0.528, 'w': 0.722, 'x': 0.528, 'y': 0.528, 'z': 0.444, 'A': 0.75, 'B': 0.708,
         'C': 0.722, 'D': 0.764, 'E': 0.681, 'F': 0.653, 'G': 0.785, 'H': 0.75, 'I': 0.361,
         'J': 0.514, 'K': 0.778, 'L': 0.625, 'M': 0.917, 'N': 0.75, 'O': 0.778, 'P': 0.681,
         'Q': 0.778, 'R': 0.736, 'S': 0.556, 'T': 0.722, 'U': 0.75, 'V': 0.75, 'W': 1.028,
         'X': 0.75, 'Y': 0.75, 'Z': 0.611, '0': 0.5, '1': 0.5, '2': 0.5, '3': 0.5, '4': 0.5,
         '5': 0.5, '6': 0.5, '7': 0.5, '8': 0.5, '9': 0.5, '(': 0.389, ')': 0.389, '[': 0.278,
         ']': 0.278, '+': 0.778, '=': 0.778, ',': 0.278, '.': 0.278, ';': 0.278, ':': 0.278,
         '!': 0.278, '?': 0.472, '/': 0.5, '-': 0.333, "'": 0.278, ' ': 0.333, '|': 0.278,
         '<': 0.778, '>': 0.778, '*': 0.5, '"': 0.5}
BOLD = {'a': 0.559, 'b': 0.639, 'c': 0.511, 'd': 0.639, 'e': 0.527, 'f': 0.351, 'g': 0.575,
        'h': 0.639, 'i': 0.319, 'j': 0.351, 'k': 0.607, 'l': 0.319, 'm': 0.958, 'n': 0.639,
        'o': 0.575, 'p': 0.639, 'q': 0.607, 'r': 0.474, 's': 0.454, 't': 0.447, 'u': 0.639,
        'v': 0.607, 'w': 0.831, 'x': 0.607, 'y': 0.607, 'z': 0.511, 'A': 0.869, 'B': 0.818,
        'C': 0.831, 'D': 0.882, 'E': 0.756, 'F': 0.724, 'G': 0.904, 'H': 0.9, 'I': 0.436,
        'J': 0.594, 'K': 0.901, 'L': 0.692, 'M': 1.092, 'N': 0.9, 'O': 0.864, 'P': 0.786,
        'Q': 0.864, 'R': 0.862, 'S': 0.639, 'T': 0.8, 'U': 0.885, 'V': 0.869, 'W': 1.189,
        'X': 0.869, 'Y': 0.869, 'Z': 0.703, '0': 0.575, '1': 0.575, '2': 0.575, '3': 0.575,
        '4': 0.575, '5': 0.575, '6': 0.575, '7': 0.575, '8': 0.575, '9': 0.575}
GREEK = {'alpha': 0.643, 'beta': 0.618, 'gamma': 0.573, 'delta': 0.482, 'epsilon': 0.406,
         'zeta': 0.511, 'eta': 0.532, 'theta': 0.497, 'iota': 0.354, 'kappa': 0.576,
         'lambda': 0.583, 'mu': 0.603, 'nu': 0.558, 'xi': 0.484, 'pi': 0.606, 'rho': 0.517,
         'sigma': 0.607, 'tau': 0.55, 'upsilon': 0.576, 'phi': 0.596, 'chi': 0.626,
         'psi': 0.687, 'omega': 0.658, 'varepsilon': 0.466, 'vartheta': 0.591,
         'varpi': 0.856, 'varrho': 0.517, 'varsigma': 0.443, 'varphi': 0.654,
         'partial': 0.586, 'ell': 0.417, 'imath': 0.345, 'jmath': 0.469}
BOLD_GREEK = {'alpha': 0.761, 'beta': 0.694, 'gamma': 0.654, 'delta': 0.56, 'epsilon': 0.483,
              'zeta': 0.57, 'eta': 0.637, 'theta': 0.594, 'iota': 0.412, 'kappa': 0.668,
              'lambda': 0.671, 'mu': 0.708, 'nu': 0.646, 'xi': 0.539, 'pi': 0.719,
              'rho': 0.612, 'sigma': 0.723, 'tau': 0.656, 'upsilon': 0.668, 'phi': 0.712,
              'chi': 0.718, 'psi': 0.795, 'omega': 0.755}
UPPER_GREEK = {'Gamma': 0.625, 'Delta': 0.833, 'Theta': 0.778, 'Lambda': 0.694, 'Xi': 0.667,
               'Pi': 0.75, 'Sigma': 0.722, 'Upsilon': 0.778, 'Phi': 0.722, 'Psi': 0.778,
               'Omega': 0.722}
# (class, width in em) of the symbols of cmsy10 and others that are commands
SYMBOLS = {
    "odot": ("Bin", 0.778), "oslash": ("Bin", 0.778), "otimes": ("Bin", 0.778),
    "oplus": ("Bin", 0.778), "ominus": ("Bin", 0.778), "circ": ("Bin", 0.5),
    "cdot": ("Bin", 0.278), "times": ("Bin", 0.778), "pm": ("Bin", 0.778),
    "mp": ("Bin", 0.778), "ast": ("Bin", 0.5), "bullet": ("Bin", 0.5), "setminus": ("Bin", 0.5),
    "in": ("Rel", 0.667), "le": ("Rel", 0.778), "leq": ("Rel", 0.778), "ge": ("Rel", 0.778),
    "geq": ("Rel", 0.778), "neq": ("Rel", 0.778), "ne": ("Rel", 0.778), "to": ("Rel", 1.0),
    "approx": ("Rel", 0.778), "equiv": ("Rel", 0.778), "sim": ("Rel", 0.778),
    "Rightarrow": ("Rel", 1.0), "Longrightarrow": ("Rel", 1.639), "mapsto": ("Rel", 1.0),
    "coloneqq": ("Rel", 1.222),
    "top": ("Ord", 0.778), "infty": ("Ord", 1.0), "prime": ("Ord", 0.275), "nabla": ("Ord", 0.833),
    "forall": ("Ord", 0.556), "exists": ("Ord", 0.556), "emptyset": ("Ord", 0.5),
    "dots": ("Inner", 1.172), "ldots": ("Inner", 1.172), "cdots": ("Inner", 1.172),
    "vdots": ("Ord", 0.278), "lVert": ("Open", 0.5), "rVert": ("Close", 0.5),
    "lvert": ("Open", 0.278), "rvert": ("Close", 0.278), "Vert": ("Ord", 0.5),
    "vert": ("Ord", 0.278), "|": ("Ord", 0.5), "{": ("Open", 0.5), "}": ("Close", 0.5),
    "langle": ("Open", 0.389), "rangle": ("Close", 0.389), "%": ("Ord", 0.833),
    "&": ("Ord", 0.778), "#": ("Ord", 0.833), "$": ("Ord", 0.5), "_": ("Ord", 0.5),
    "textbackslash": ("Ord", 0.5), "textasciitilde": ("Ord", 0.5),
    "textasciicircum": ("Ord", 0.5),
}
SPACES = {"quad": 18, "qquad": 36, ",": 3, ":": 4, ";": 5, "!": -3, " ": 6, "enspace": 9}
OPERATOR_NAMES = {"tanh", "log", "exp", "sin", "cos", "sinh", "cosh", "max", "min", "det",
                  "ln", "sup", "inf", "lim", "arg", "tan"}
BIG = {"sum": (1.056, 1.444), "prod": (0.944, 1.278)}                  # text, display
SIZED = {"bigl": 0.458, "bigr": 0.458, "big": 0.458, "Bigl": 0.736, "Bigr": 0.736, "Big": 0.736,
         "biggl": 0.792, "biggr": 0.792, "bigg": 0.792, "Biggl": 0.875, "Biggr": 0.875,
         "Bigg": 0.875, "bigm": 0.458, "Bigm": 0.736}
ACCENTS = {"hat", "tilde", "bar", "check", "breve", "vec", "dot", "ddot", "acute", "grave",
           "widehat", "widetilde", "overline", "underline", "mathring"}
FONTS = {"bm": "bold-italic", "boldsymbol": "bold-italic", "mathbf": "bold",
         "mathrm": "roman", "operatorname": "roman", "text": "text", "textrm": "text",
         "textit": "text", "mathit": "italic", "mathsf": "roman", "mathcal": "roman",
         "mathbb": "bold", "mathtt": "roman", "textbf": "text", "emph": "text"}
_NULL_DELIMITER = 1.2      # \nulldelimiterspace, pt
_SCRIPT_SPACE = 0.5        # \scriptspace, pt

_TOKEN = re.compile(r"\\([A-Za-z]+)\*?|\\(.)|(\s+)|(.)", re.S)


def _tokens(text):
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1):
            out.append(("cs", m.group(1)))
        elif m.group(2) is not None:
            out.append(("cs", m.group(2)))
        elif m.group(3):
            out.append(("space", " "))
        else:
            out.append(("ch", m.group(4)))
    return out


def _group(tokens, i):
    """(tokens of the argument at ``i``, index after it): a {group} or one token."""
    while i < len(tokens) and tokens[i][0] == "space":
        i += 1
    if i >= len(tokens):
        return [], i
    if tokens[i] == ("ch", "{"):
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            if tokens[j] == ("ch", "{"):
                depth += 1
            elif tokens[j] == ("ch", "}"):
                depth -= 1
            j += 1
        return tokens[i + 1:j - 1], j
    if tokens[i][0] == "cs" and tokens[i][1] in FONTS | {a: None for a in ACCENTS}:
        arg, j = _group(tokens, i + 1)  # \bm\hat y: the command with its argument
        return tokens[i:j], j
    return [tokens[i]], i + 1


_SMALLER = {"D": "T", "T": "S", "S": "SS", "SS": "SS"}
_SCRIPT = {"D": "S", "T": "S", "S": "SS", "SS": "SS"}
# TeX's spacing between atoms (TeXbook, chapter 18): mu, and whether it is kept in
# script styles
_THIN, _MED, _THICK = 3, 4, 5
_SPACE = {
    ("Ord", "Op"): (_THIN, True), ("Ord", "Bin"): (_MED, False), ("Ord", "Rel"): (_THICK, False),
    ("Ord", "Inner"): (_THIN, False), ("Op", "Ord"): (_THIN, True), ("Op", "Op"): (_THIN, True),
    ("Op", "Rel"): (_THICK, False), ("Op", "Inner"): (_THIN, False),
    ("Bin", "Ord"): (_MED, False), ("Bin", "Op"): (_MED, False), ("Bin", "Open"): (_MED, False),
    ("Bin", "Inner"): (_MED, False), ("Rel", "Ord"): (_THICK, False),
    ("Rel", "Op"): (_THICK, False), ("Rel", "Open"): (_THICK, False),
    ("Rel", "Inner"): (_THICK, False), ("Close", "Op"): (_THIN, True),
    ("Close", "Bin"): (_MED, False), ("Close", "Rel"): (_THICK, False),
    ("Close", "Inner"): (_THIN, False), ("Punct", "Ord"): (_THIN, False),
    ("Punct", "Op"): (_THIN, False), ("Punct", "Rel"): (_THIN, False),
    ("Punct", "Open"): (_THIN, False), ("Punct", "Close"): (_THIN, False),
    ("Punct", "Punct"): (_THIN, False), ("Punct", "Inner"): (_THIN, False),
    ("Inner", "Ord"): (_THIN, False), ("Inner", "Op"): (_THIN, True),
    ("Inner", "Bin"): (_MED, False), ("Inner", "Rel"): (_THICK, False),
    ("Inner", "Open"): (_THIN, False), ("Inner", "Punct"): (_THIN, False),
    ("Inner", "Inner"): (_THIN, False),
}


class _Atom:
    __slots__ = ("kind", "width", "sub", "sup", "limits", "tall")

    def __init__(self, kind, width, tall=False, limits=False):
        self.kind, self.width, self.tall, self.limits = kind, width, tall, limits
        self.sub = self.sup = None


def _em(style):
    return SIZES[style] * _SCRIPT_WIDER[style]


def em(style="D"):
    """One em of the math font in ``style``, in pt."""
    return SIZES[style]


def _char(ch, style, font):
    size = _em(style)
    if font == "bold":
        table = BOLD
    elif font == "bold-italic":
        table = BOLD_ITALIC if ch.isalpha() else BOLD
    elif font in ("roman", "text"):
        table = ROMAN
    else:
        table = ITALIC if ch.isalpha() else ROMAN
    if ch in ("+", "*"):
        return _Atom("Bin" if font != "text" else "Ord", table.get(ch, 0.778) * size)
    if ch == "-":
        return _Atom("Bin" if font != "text" else "Ord", (0.778 if font != "text" else 0.333)
                     * size)
    if ch in "=<>":
        return _Atom("Rel" if font != "text" else "Ord", 0.778 * size)
    if ch in "([":
        return _Atom("Open", table.get(ch, 0.389) * size)
    if ch in ")]":
        return _Atom("Close", table.get(ch, 0.389) * size)
    if ch in ",;":
        return _Atom("Punct" if font != "text" else "Ord", 0.278 * size)
    if ch == "'":
        return _Atom("Ord", 0.275 * SIZES[_SCRIPT[style]])
    return _Atom("Ord", table.get(ch, 0.6) * size)


class _Measure:
    """One pass over the tokens of a formula: atoms with their widths, then the spaces
    between them."""

    def __init__(self, tokens, style, font="italic"):
        self.tokens, self.style, self.font = tokens, style, font

    def atoms(self):
        tokens, style, out, i = self.tokens, self.style, [], 0
        size = _em(style)
        while i < len(tokens):
            kind, value = tokens[i]
            i += 1
            if kind == "space":
                if self.font == "text":
                    out.append(_Atom("Ord", 0.333 * size))
                continue
            if kind == "ch" and value in "^_":
                arg, i = _group(tokens, i)
                if not out:
                    out.append(_Atom("Ord", 0.0))
                w = _width(arg, _SCRIPT[style], self.font if self.font != "text" else "italic")
                if value == "^":
                    out[-1].sup = w
                else:
                    out[-1].sub = w
                continue
            if kind == "ch" and value == "{":
                inner, i = _group(tokens, i - 1)
                out.append(_Atom("Ord", _width(inner, style, self.font),
                                 tall=_is_tall(inner, style)))
                continue
            if kind == "ch" and value in "&":
                continue
            if kind == "ch":
                out.append(_char(value, style, self.font))
                continue
            i = self.command(value, i, out)
        return out

    def command(self, name, i, out):
        tokens, style = self.tokens, self.style
        size = _em(style)
        if name in SPACES:
            out.append(_Atom("Space", SPACES[name] * SIZES[style] / 18))
            return i
        if name == "\\":
            return i
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            num, i = _group(tokens, i)
            den, i = _group(tokens, i)
            inner = {"dfrac": "T", "tfrac": "S"}.get(name, _SMALLER[style])
            if name == "dfrac":
                inner = "T"
            w = max(_width(num, inner), _width(den, inner)) + 2 * _NULL_DELIMITER
            out.append(_Atom("Inner", w, tall=style == "D" or name == "dfrac"))
            return i
        if name == "left":
            # \left( ... \right): the delimiters grow with what they enclose
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                if tokens[j] == ("cs", "left"):
                    depth += 1
                elif tokens[j] == ("cs", "right"):
                    depth -= 1
                j += 1
            inner = tokens[i + 1:j - 1]
            opening, closing = tokens[i], tokens[j] if j < len(tokens) else ("ch", ".")
            tall = _is_tall(inner, style)
            w = _width(inner, style, self.font)
            scale = 0.736 if tall else 0.389
            for delim in (opening, closing):
                w += _NULL_DELIMITER if delim == ("ch", ".") else scale * size
            out.append(_Atom("Inner", w, tall=tall))
            return j + 1
        if name == "right":
            return i + 1
        if name in SIZED:
            delim = tokens[i] if i < len(tokens) else ("ch", ".")
            w = _NULL_DELIMITER if delim == ("ch", ".") else SIZED[name] * size
            kind = "Open" if name.endswith("l") else "Close" if name.endswith("r") else "Ord"
            out.append(_Atom(kind, w))
            return i + 1
        if name in BIG:
            text_w, display_w = BIG[name]
            limits = style == "D"
            out.append(_Atom("Op", (display_w if limits else text_w) * size, limits=limits,
                             tall=limits))
            return i
        if name in OPERATOR_NAMES:
            out.append(_Atom("Op", sum(ROMAN.get(c, 0.5) for c in name) * size))
            return i
        if name == "operatorname":
            arg, i = _group(tokens, i)
            out.append(_Atom("Op", _width(arg, style, "roman")))
            return i
        if name in FONTS:
            arg, i = _group(tokens, i)
            font = FONTS[name]
            if font == "text":
                w = _width(arg, "T" if style == "D" else style, "text")
            else:
                w = _width(arg, style, font)
            out.append(_Atom("Ord", w))
            return i
        if name in ACCENTS:
            arg, i = _group(tokens, i)
            out.append(_Atom("Ord", _width(arg, style, self.font)))
            return i
        if name == "boxed":
            arg, i = _group(tokens, i)
            out.append(_Atom("Ord", _width(arg, style) + 2 * 3.4))
            return i
        if name == "mathbb":
            arg, i = _group(tokens, i)
            out.append(_Atom("Ord", 0.722 * size * max(1, len(arg))))
            return i
        if name == "not":
            return i
        if name in GREEK:
            table = BOLD_GREEK if self.font == "bold-italic" else GREEK
            out.append(_Atom("Ord", table.get(name, GREEK[name]) * size))
            return i
        if name in UPPER_GREEK:
            out.append(_Atom("Ord", UPPER_GREEK[name] * size * (1.1 if "bold" in self.font
                                                                 else 1.0)))
            return i
        if name in SYMBOLS:
            kind, w = SYMBOLS[name]
            if self.font == "text":
                kind = "Ord"
            out.append(_Atom(kind, w * size))
            return i
        if name in ("mathopen", "mathclose", "mathbin", "mathrel", "mathord", "mathop"):
            arg, i = _group(tokens, i)
            kind = {"mathopen": "Open", "mathclose": "Close", "mathbin": "Bin",
                    "mathrel": "Rel", "mathord": "Ord", "mathop": "Op"}[name]
            out.append(_Atom(kind, _width(arg, style, self.font)))
            return i
        if name in ("displaystyle", "textstyle", "scriptstyle"):
            new = {"displaystyle": "D", "textstyle": "T", "scriptstyle": "S"}[name]
            out.append(_Atom("Ord", _width(tokens[i:], new, self.font)))
            return len(tokens)
        if name in ("limits", "nolimits", "nonumber", "notag", "relax", "protect"):
            return i
        if name in ("tag", "label", "hspace", "mbox", "hbox"):
            arg, i = _group(tokens, i)
            if name in ("mbox", "hbox"):
                out.append(_Atom("Ord", _width(arg, "T", "text")))
            elif name == "tag":
                out.append(_Atom("Ord", _width(arg, "T", "text") + 2 * 0.389 * size))
            return i
        out.append(_Atom("Ord", 0.8 * size))  # an unknown command: a wide letter
        return i


def _is_tall(tokens, style):
    """Does the formula hold a fraction or a big operator with limits (display only)?"""
    if style != "D":
        return False
    names = {v for k, v in tokens if k == "cs"}
    return bool(names & {"frac", "dfrac", "sum", "prod"})


def _width(tokens, style="D", font="italic"):
    atoms = _Measure(tokens, style, font).atoms()
    mu = SIZES[style] / 18
    total, previous = 0.0, None
    script = style in ("S", "SS")
    for k, atom in enumerate(atoms):
        if atom.kind == "Space":
            total += atom.width
            continue
        kind = atom.kind
        if kind == "Bin" and (previous in (None, "Bin", "Op", "Rel", "Open", "Punct")
                              or _next_kind(atoms, k) in (None, "Rel", "Close", "Punct")):
            kind = "Ord"  # a leading minus is unary
        if previous is not None:
            space, in_script = _SPACE.get((previous, kind), (0, True))
            if space and (in_script or not script):
                total += space * mu
        w = atom.width
        scripts = [s for s in (atom.sub, atom.sup) if s is not None]
        if scripts:
            if atom.limits:
                w = max([w] + scripts)
            else:
                w += max(scripts) + _SCRIPT_SPACE
        total += w
        previous = kind
    return total


def _next_kind(atoms, k):
    for a in atoms[k + 1:]:
        if a.kind != "Space":
            return a.kind
    return None


def tex_width(latex, display=True):
    """The width in pt of the math formula ``latex`` set in display (or text) style."""
    return _width(_tokens(latex), "D" if display else "T")
