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


def default_notation(cell):
    """The notation of symrnn's sheets: delta^(t) = dL/dz^(t) when the cell has a z
    (the exercise's pre-activation; ``ADJOINT_NAMES`` of the solution sheet)."""
    names = {v.name for v in cell.variables} | {p.name for p in cell.params}
    if "z" in names and "delta" not in names:
        return Notation(adjoints={"z": r"\delta"})
    return Notation()


def _key(core, subs=()):
    return (core, tuple(subs))


def key_of_latex(text):
    """The (core, subscripts) key of one symbol written in LaTeX, e.g. W_{hh}."""
    from .latex import parse_latex
    try:
        node = parse_latex(text)
    except AnswerSyntaxError as e:
        raise ValueError(f"notation: cannot read {text!r} as a symbol: {e.reason}") from None
    if not isinstance(node, Name) or node.time is not None:
        raise ValueError(f"notation: {text!r} is not one symbol")
    return _key(node.core, node.subs)


class Vocabulary:
    """The symbols of one cell in one notation: key -> ("name" | "adjoint", cell name)."""

    def __init__(self, cell, notation):
        self.cell = cell
        self.notation = notation
        self.table = {}
        names = [s.name for s in cell.params + cell.inputs + cell.targets + cell.variables
                 if s.name != "L"]
        self.names = names
        renamed = set()
        for name, typed in notation.names.items():
            if name not in names:
                raise ValueError(f"notation: {name!r} is not a name of the cell "
                                 f"(its names: {', '.join(names)})")
            self._add(self._typed_key(typed), ("name", name))
            renamed.add(name)
        for name in names:
            for key in self._keys(name):
                self._add(key, ("name", name), weak=name in renamed)
        variables = {v.name for v in cell.variables}
        for name, typed in notation.adjoints.items():
            if name not in variables:
                raise ValueError(f"notation: adjoints: {name!r} is not a variable of the cell")
            self._add(self._typed_key(typed), ("adjoint", name))

    @staticmethod
    def _typed_key(typed):
        if typed.replace("_", "").isalnum() and typed.isascii():
            return _key(typed)
        return key_of_latex(typed)

    def _keys(self, name):
        keys = [_key(name)]
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
        if name in self.cell.notation:
            try:
                keys.append(key_of_latex(self.cell.notation[name]))
            except ValueError:
                pass
        return keys

    def _add(self, key, value, weak=False):
        old = self.table.get(key)
        if old is None:
            self.table[key] = value
        elif old != value and not weak:
            self.table[key] = AMBIGUOUS

    def lookup(self, core, subs=()):
        """("name" | "adjoint", cell name), AMBIGUOUS, or None."""
        return self.table.get(_key(core, subs))
