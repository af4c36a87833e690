"""How an answer may name the quantities of a cell: the notation it is read in.

``Notation`` is an input of the parser: renamed symbols (``{"W": "W_{hh}"}``),
named adjoints (``{"z": r"\\delta"}``: delta^(t) is dL/dz^(t)), and the layout
(``"column"``: h is a column and W h^(t-1); ``"row"``: h is a row and
h^(t-1) W, so that the typed W stands for the transpose of the cell's W and a
gradient typed in rows is the transpose of the cell's). Time may always be
written as a superscript ^{(t)} or a subscript _t, and vectors bold or plain:
the parser accepts every form, so a notation does not need to say.

``Vocabulary`` maps the symbols as typed to the cell's names: each name is
accepted as the sheet prints it (W_f for ``W_f``, P_{0} for ``P0``,
\\hat{y} for ``yhat``, \\mathrm{Wxh} or W_{xh} for ``Wxh``), as the cell names
it (plain text), and as the notation renames it.
"""
from dataclasses import dataclass, field

from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import translate

from .syntax import AnswerSyntaxError, Name

AMBIGUOUS = object()
LAYOUTS = ("column", "row")


@dataclass(frozen=True)
class Notation:
    """What the symbols of an answer mean (see the module docstring).

    names     {cell name: how it is typed}, LaTeX or a plain word
    adjoints  {cell variable: symbol of its adjoint}, e.g. {"z": r"\\delta"}
    layout    "column" (default) or "row"
    """
    names: dict = field(default_factory=dict)
    adjoints: dict = field(default_factory=dict)
    layout: str = "column"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"notation: layout must be 'column' or 'row', got {self.layout!r}")
        for what, table in (("names", self.names), ("adjoints", self.adjoints)):
            if not hasattr(table, "items") or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                raise ValueError(f"notation: {what} must map names to strings")


def from_profile(profile, cell, adjoints=None):
    """The ``Notation`` in which a notation profile (``symrnn.render.notation``: a
    built-in name, a .toml file, a dict or a render ``Notation``) prints ``cell``: its
    symbols for the cell's names, its layout, and ``adjoints`` (default: the sheets'
    delta for z, see ``default_notation``). Time and bold or plain vectors need no
    entry: the parser reads every form."""
    from ..render.notation import load_notation
    p = load_notation(profile)
    known = {s.name for s in cell.params + cell.inputs + cell.targets + cell.variables}
    names = {k: v for k, v in p.printer_settings(cell)["symbols"].items() if k in known}
    if adjoints is None:
        adjoints = default_notation(cell).adjoints
    return Notation(names=names, adjoints=dict(adjoints), layout=p.layout)


def default_notation(cell):
    """The notation of symrnn's sheets: delta^(t) = dL/dz^(t) when the cell has a z
    (the exercise's pre-activation; ``ADJOINT_NAMES`` of the solution sheet)."""
    names = {v.name for v in cell.variables} | {p.name for p in cell.params}
    if "z" in names and "delta" not in names:
        return Notation(adjoints={"z": r"\delta"})
    return Notation()


ACCENT_WORDS = ("hat", "tilde", "bar", "check", "breve", "ddot", "dot", "acute", "grave")


def _core(core):
    """A core typed as text with an accent word after it, as LaTeX's: ``htilde`` is
    \\tilde{h} (the text printer's form and the cell syntax's), ``yhat`` \\hat{y}."""
    for word in ACCENT_WORDS:
        if core.endswith(word) and len(core) > len(word) and core[:-len(word)].isalpha():
            return f"{word}({_core(core[:-len(word)])})"
    return core


def _key(core, subs=(), marks=()):
    return (_core(core), tuple(_core(s) for s in subs), tuple(marks))


def key_of_latex(text):
    """The (core, subscripts, marks) key of one symbol written in LaTeX, e.g. W_{hh}."""
    from .latex import parse_latex
    try:
        node = parse_latex(text)
    except AnswerSyntaxError as e:
        raise ValueError(f"notation: cannot read {text!r} as a symbol: {e.reason}") from None
    words = _juxtaposed(node)
    if words is not None:           # \Delta t: plain names side by side make one symbol
        return _key(" ".join(words))
    if not isinstance(node, Name) or node.time is not None:
        raise ValueError(f"notation: {text!r} is not one symbol")
    return _key(node.core, node.subs, node.marks)


def _juxtaposed(node):
    r"""The cores of plain names written side by side (\Delta t), or None."""
    from .syntax import Binary
    if isinstance(node, Binary) and node.op == "@" and node.op_column == node.right.start:
        left, right = _juxtaposed(node.left) or _plain(node.left), _plain(node.right)
        if left and right:
            return left + right
    return None


def _plain(node):
    if isinstance(node, Name) and not node.subs and node.time is None and not node.marks \
            and node.sub_time is None:
        return [node.core]
    return None


class Vocabulary:
    """The symbols of one cell in one notation: key -> ("name" | "adjoint", cell name)."""

    def __init__(self, cell, notation):
        self.cell = cell
        self.notation = notation
        self.table = {}
        names = [s.name for s in cell.params + cell.fixed_values + cell.inputs + cell.targets
                 + cell.variables if s.name != "L"]
        names += [c.name for c in cell.constants]
        self.names = names
        self.constants = {c.name for c in cell.constants}
        # the sizes, as coefficients: sum(2 ones(D)) is 2 D
        for size in cell.sizes:
            self._add(_key(str(size)), ("size", str(size)), weak=True)
        renamed = set()
        for name, typed in notation.names.items():
            if name not in names:
                raise ValueError(f"notation: {name!r} is not a name of the cell "
                                 f"(its names: {', '.join(names)})")
            self._add(self._typed_key(typed),
                      ("constant" if name in self.constants else "name", name))
            renamed.add(name)
        for name in names:
            kind = "constant" if name in self.constants else "name"
            for key in self._keys(name):
                self._add(key, (kind, name), weak=name in renamed)
        variables = {v.name for v in cell.variables}
        for name, typed in notation.adjoints.items():
            if name not in variables:
                raise ValueError(f"notation: adjoints: {name!r} is not a variable of the cell")
            self._add(self._typed_key(typed), ("adjoint", name))

    @staticmethod
    def _typed_key(typed):
        if typed.replace("_", "").isalnum() and typed.isascii():
            head, *rest = typed.split("_")    # W_hh as the text parser reads it: W, (hh,)
            return _key(head, rest) if head and all(rest) else _key(typed)
        return key_of_latex(typed)

    def _keys(self, name):
        keys = [_key(name)]
        head, *rest = name.split("_")
        if rest and head and all(rest):
            keys.append(_key(head, rest))      # a0_0 typed as text: a0, (0,)
        base, supers, subs = split_super_sub(name)
        if subs or supers:
            keys.append(_key(base, subs + supers))
        elif len(base) > 1 and base.isalpha():
            translated = translate(base)
            if translated != base:               # yhat -> \hat{y}, delta -> \delta
                try:
                    keys.append(key_of_latex(translated))
                except ValueError:
                    pass
            keys.append(_key(base[0], (base[1:],)))   # Wxh typed W_{xh}
        from ..render.symbols import default_symbol
        printed = [default_symbol(name).latex()]        # as the sheets print it: \Delta t
        if name in self.cell.notation:
            printed.append(self.cell.notation[name])
        for tex in printed:
            try:
                keys.append(key_of_latex(tex))
            except ValueError:
                pass
        return keys

    def _add(self, key, value, weak=False):
        old = self.table.get(key)
        if old is None:
            self.table[key] = value
        elif old != value and not weak:
            self.table[key] = AMBIGUOUS

    def lookup(self, core, subs=(), marks=()):
        """("name" | "adjoint" | "constant" | "size", cell name), AMBIGUOUS, or None."""
        return self.table.get(_key(core, subs, marks))
