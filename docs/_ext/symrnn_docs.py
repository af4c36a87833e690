"""Sphinx directives that print what the package itself knows, so that no list in the
documentation is kept by hand:

``symrnn-operations``
    the operations of ``symrnn/ops.py``, walked from its registry ``OPERATIONS``: the
    name in the text syntax, the arity, the definition, the adjoint rule as the
    engine prints it on a sheet (``symrnn.render.narrative.rule_catalogue``) and in
    plain text (``str``), and the kernels each one brings (which backends run it).
    ``:rule-only:`` lists the operations that only the rules make (the derivative of
    relu, of abs).

``symrnn-cli``
    the ``--help`` text of ``symrnn`` or of one of its commands, from the CLI's own
    parser (``symrnn.cli.build_parser``), at a fixed width.
"""
import inspect
import os

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

# the kernel keys of ops.py and what runs them (ops.py's docstring defines the keys)
KERNEL_USERS = {
    "numpy": "NumPy",
    "numba": "Numba",
    "array": "PyTorch, JAX",
}


def _paragraph(*children):
    para = nodes.paragraph()
    para.extend(children)
    return para


def _cell(*children):
    entry = nodes.entry()
    entry += _paragraph(*children)
    return entry


def _table(header, rows, widths):
    table = nodes.table(classes=["symrnn-operations"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for title in header:
        row += _cell(nodes.Text(title))
    head += row
    group += head
    body = nodes.tbody()
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            row += cell
        body += row
    group += body
    return table


def _math(tex):
    return nodes.math(tex, tex)


def _literal(text):
    return nodes.literal(text, text)


def _arity(op):
    """The number of operands the node class takes (its constructor's parameters)."""
    return len(inspect.signature(op.__new__).parameters) - 1


def _kernels(op):
    """``numpy: numpy.tanh``, ... for the kernels the operation brings."""
    out = []
    for key, kernel in op.kernels.items():
        if kernel is None:
            continue
        text = kernel if isinstance(kernel, str) else getattr(kernel, "__name__", key)
        out.append((key, "lambda" if text == "<lambda>" else text))
    return out


def operation_rows(rule_only=False):
    """One row of data per operation of the registry, in its order."""
    from sympy import MatrixSymbol, Symbol

    from symrnn.model.nodes import Adjoint
    from symrnn.ops import OPERATIONS
    from symrnn.render.narrative import Typesetter, rule_catalogue

    ts = Typesetter(None)
    n = Symbol("n", integer=True, positive=True)
    a, b = MatrixSymbol("a", n, 1), MatrixSymbol("b", n, 1)
    rows = []
    for key, op in OPERATIONS.items():
        if (op.name is None) != rule_only:
            continue
        row = {"name": op.name or op.__name__, "class": op.__name__, "arity": _arity(op),
               "words": op.words, "definition": ts(op(b), inline=True),
               "text": str(op(b)), "kernels": _kernels(op), "activation": op.activation}
        if not rule_only:
            (rule,) = rule_catalogue(ts, [op.__name__], inline=False)
            (result,) = rule.results
            row["value"] = f"{rule.definition.lhs} = {rule.definition.rhs}"
            row["rule"] = f"{result.lhs} = {result.rhs}"
            row["rule_text"] = f"dL/db = {op.vjp(a, b, Adjoint(a))}"
        rows.append(row)
    return rows


class OperationsDirective(SphinxDirective):
    """``symrnn-operations``: name, arity, meaning, definition and adjoint rule;
    ``:kernels:`` the plain-text rule and the kernels instead; ``:rule-only:`` the
    operations only the rules make."""
    has_content = False
    option_spec = {"rule-only": directives.flag, "kernels": directives.flag}

    def run(self):
        rule_only = "rule-only" in self.options
        rows = []
        for op in operation_rows(rule_only):
            kernels = []
            for k, (key, name) in enumerate(op["kernels"]):
                if k:
                    kernels.append(nodes.Text(", "))
                kernels += [nodes.strong(key, key), nodes.Text(" "), _literal(name)]
            users = sorted({u for key, _ in op["kernels"] for u in
                            KERNEL_USERS.get(key, key).split(", ")})
            if rule_only:
                rows.append([_cell(_literal(op["class"])), _cell(nodes.Text(op["words"])),
                             _cell(_math(op["definition"])), _cell(*kernels)])
            elif "kernels" in self.options:
                rows.append([_cell(_literal(op["name"])), _cell(_literal(op["rule_text"])),
                             _cell(nodes.Text(", ".join(users))), _cell(*kernels)])
            else:
                name = nodes.entry()
                name += _paragraph(_literal(op["name"]))
                words = op["words"] + (", an ElmanRNN activation" if op["activation"] else "")
                name += _paragraph(nodes.emphasis(words, words))
                rows.append([name, _cell(nodes.Text(str(op["arity"]))),
                             _cell(_math(op["value"])), _cell(_math(op["rule"]))])
        if rule_only:
            return [_table(["class", "meaning", "value", "kernels"], rows, [12, 18, 20, 50])]
        if "kernels" in self.options:
            return [_table(["text syntax", "adjoint rule, as symrnn derive prints it",
                            "backends", "kernels"], rows, [12, 32, 16, 40])]
        return [_table(["operation", "arity", "definition", "adjoint rule"],
                       rows, [22, 6, 24, 48])]


class CliDirective(SphinxDirective):
    """``symrnn-cli``: the top-level help, then a section with the help of every
    command the parser has (so a new command appears without an edit here);
    ``symrnn-cli NAME``: the help of that command alone."""
    has_content = False
    optional_arguments = 1

    def _help(self, parser):
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            text = parser.format_help()
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block

    def run(self):
        from symrnn.cli import build_parser

        parser = build_parser()
        (commands,) = [a for a in parser._subparsers._group_actions]
        if self.arguments:
            return [self._help(commands.choices[self.arguments[0]])]
        out = [self._help(parser)]
        for name, sub in commands.choices.items():
            section = nodes.section(ids=[f"symrnn-{name}"], names=[f"symrnn {name}"])
            section += nodes.title(text=f"symrnn {name}")
            section += self._help(sub)
            self.state.document.note_implicit_target(section)
            out.append(section)
        return out


def setup(app):
    app.add_directive("symrnn-operations", OperationsDirective)
    app.add_directive("symrnn-cli", CliDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

