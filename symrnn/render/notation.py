"""Notation profiles: the symbols, the time index, bold or plain vectors, columns or
rows, and the title, course and author of a document, as a small TOML file.

    # my-course.toml
    time = "subscript"        # h_{t}; "superscript" (default): h^{(t)}
    vectors = "plain"         # "bold" (default, \\bm), "upright" (\\mathbf) or "plain"
    layout = "row"            # x W: every formula transposed; "column" (default): W x
    title = "Sheet 3: BPTT"   # plain text (the documents escape it)
    course = "Deep Learning, spring term"
    author = "A. Teacher"

    [symbols]                 # a cell's name -> the LaTeX of its symbol, for every cell
    yhat = '\\hat{y}'

    [cells.elman]             # only for one cell: elman, lstm, gru or a cell's own name
    W = 'W_{hh}'
    U = 'W_{xh}'

A symbol is LaTeX from a small grammar (letters, digits, ``_`` and ``^``, braces,
Greek letters, accents such as ``\\hat`` and ``\\tilde``, ``\\mathrm`` and the other
math fonts, ``\\prime``); with ``layout = "row"`` a matrix's symbol names its row
form, the matrix that multiplies a row vector from the right (``x W_{xh}``, the
transpose of the column form's matrix). A key the format does not have, a value
out of its choices or a symbol outside the grammar is a ``ValueError`` that names
the key.

Built in (``symrnn/render/notations/``): ``goodfellow`` (the default: Goodfellow,
Bengio and Courville, Deep Learning, ch. 10), ``d2l`` (Dive into Deep Learning: row
vectors, h_t, W_xh, W_hh, W_hq), ``d2l-bptt`` (D2L's chapter on BPTT: columns, h_t,
W_hx, W_hh, W_qh) and ``cs231n`` (Karpathy's min-char-rnn and CS231n: W_xh, W_hh,
W_hy, plain vectors).
"""
import importlib.resources
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the same parser as a package
    import tomli as tomllib

from .symbols import parse_symbol

__all__ = ["Notation", "NotationError", "builtin_notations", "load_notation", "DEFAULT"]

DEFAULT = "goodfellow"
CHOICES = {"time": ("superscript", "subscript"), "vectors": ("bold", "upright", "plain"),
           "layout": ("column", "row")}
TEXTS = ("name", "description", "title", "course", "author")
KEYS = set(CHOICES) | set(TEXTS) | {"symbols", "cells"}
MAX_TEXT = 200
MAX_SYMBOLS = 500


class NotationError(ValueError):
    """A notation profile that cannot be used: the message names the key."""


@dataclass(frozen=True)
class Notation:
    """A notation profile (see this module's docstring for the fields)."""
    name: str = DEFAULT
    description: str = ""
    time: str = "superscript"
    vectors: str = "bold"
    layout: str = "column"
    title: str = None
    course: str = None
    author: str = None
    symbols: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)

    def symbols_for(self, cell):
        """{name: LaTeX} for ``cell``: the profile's symbols, then its cell's table."""
        out = dict(self.symbols)
        if cell is not None:
            for key in (cell_kind(cell), cell.name):
                out.update(self.cells.get(key, {}))
        return out

    def printer_settings(self, cell=None):
        """The settings of ``BPTTLatexPrinter`` for ``cell`` in this notation."""
        notation = dict(getattr(cell, "notation", {}) or {})
        notation.update(self.symbols_for(cell))
        if cell is not None:
            _check_distinct(cell, notation, self.name)
        return {"time": self.time, "vectors": self.vectors, "layout": self.layout,
                "symbols": notation}

    def with_texts(self, **texts):
        """A copy with ``title``, ``course``, ``author`` replaced where given (not None)."""
        given = {k: _text(v, k) for k, v in texts.items() if v is not None}
        unknown = set(given) - {"title", "course", "author"}
        if unknown:
            raise NotationError(f"{sorted(unknown)[0]}: not a text of a notation profile")
        return replace(self, **given)


def cell_kind(cell):
    """elman, lstm, gru for the presets (the keys of a profile's ``[cells]``), else None."""
    names = [c.__name__ for c in type(cell).__mro__]
    for kind, cls in (("elman", "ElmanRNN"), ("lstm", "LSTM"), ("gru", "GRU")):
        if cls in names:
            return kind
    return getattr(cell, "notation_kind", None)


def _check_distinct(cell, notation, profile):
    """Two names of one cell must not print alike."""
    from .symbols import default_symbol
    seen = {}
    names = [s.name for s in cell.params + cell.inputs + cell.targets + cell.variables]
    for name in names:
        tex = notation.get(name)
        key = parse_symbol(tex, f"symbols.{name}").latex() if tex and _parses(tex) \
            else (tex or default_symbol(name).latex())
        if key in seen and seen[key] != name:
            raise NotationError(f"notation {profile!r}: {seen[key]!r} and {name!r} of the "
                                f"cell {cell.name!r} would both be printed {key}")
        seen[key] = name


def _parses(tex):
    try:
        parse_symbol(tex)
        return True
    except ValueError:
        return False


def _text(value, key):
    if not isinstance(value, str):
        raise NotationError(f"{key}: expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise NotationError(f"{key}: longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise NotationError(f"{key}: control characters (a line break?) are not allowed")
    return value


def _symbols(table, where):
    if not isinstance(table, dict):
        raise NotationError(f"{where}: expected a table of name = 'LaTeX' pairs")
    if len(table) > MAX_SYMBOLS:
        raise NotationError(f"{where}: more than {MAX_SYMBOLS} symbols")
    out = {}
    for name, tex in table.items():
        if not (isinstance(name, str) and name.isidentifier() and name.isascii()):
            raise NotationError(f"{where}.{name}: not the name of a cell's variable")
        if not isinstance(tex, str):
            raise NotationError(f"{where}.{name}: expected the LaTeX of a symbol as a string, "
                                f"got {type(tex).__name__}")
        parse_symbol(tex, f"{where}.{name}")
        out[name] = tex
    return out


def from_dict(data, name=None):
    """A ``Notation`` from the parsed TOML ``data``; ``NotationError`` names a bad key."""
    if not isinstance(data, dict):
        raise NotationError("notation: expected a table of keys")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise NotationError(f"{unknown[0]}: unknown key of a notation profile (the keys are "
                            f"{', '.join(sorted(KEYS))})")
    values = {}
    for key, choices in CHOICES.items():
        if key in data:
            if data[key] not in choices:
                raise NotationError(f"{key}: {data[key]!r} is not one of "
                                    f"{', '.join(map(repr, choices))}")
            values[key] = data[key]
    for key in TEXTS:
        if key in data:
            values[key] = _text(data[key], key)
    if "symbols" in data:
        values["symbols"] = _symbols(data["symbols"], "symbols")
    if "cells" in data:
        cells = data["cells"]
        if not isinstance(cells, dict):
            raise NotationError("cells: expected tables such as [cells.lstm]")
        values["cells"] = {k: _symbols(v, f"cells.{k}") for k, v in cells.items()}
    values.setdefault("name", name or DEFAULT)
    return Notation(**values)


def _builtin_dir():
    return Path(str(importlib.resources.files("symrnn.render") / "notations"))


def builtin_notations():
    """The names of the built-in profiles."""
    return sorted(p.stem for p in _builtin_dir().glob("*.toml"))


def _read(path, name):
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise NotationError(f"notation {path}: not valid TOML ({e})") from None
    except OSError as e:
        raise NotationError(f"notation {path}: cannot read it ({e.strerror or e})") from None
    return from_dict(data, name)


def load_notation(spec=None):
    """The profile ``spec`` names: None (the default), a built-in name, the path of a
    .toml file, a dict of its keys, or a ``Notation``."""
    if spec is None:
        spec = DEFAULT
    if isinstance(spec, Notation):
        return spec
    if isinstance(spec, dict):
        return from_dict(spec, "custom")
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise NotationError(f"notation: expected a name, a file or a Notation, got "
                            f"{type(spec).__name__}")
    builtin = builtin_notations()
    if spec in builtin:
        return _read(_builtin_dir() / f"{spec}.toml", spec)
    if os.path.isfile(spec):
        return _read(spec, Path(spec).stem)
    raise NotationError(f"notation: {spec!r} is neither a built-in profile ("
                        f"{', '.join(builtin)}) nor a file")
