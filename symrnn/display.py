"""How the engine's nodes show themselves: ``sympy.latex``, ``str`` and ``pprint`` of a
node (h^(t), dL/dh^(t), tanh(z^(t)), sum_{t=1}^{T} ...) read like the sheet. The
printers live in ``symrnn.render``; these methods only hand the node to them (imported
when called, so that the model does not depend on the renderer)."""

__all__ = ["Readable"]


class Readable:
    """Mixed into the node classes (before ``MatrixExpr``)."""

    def _latex(self, printer):
        from .render.notebook import expression_latex
        return expression_latex(self)

    def _sympystr(self, printer):
        from .render.text import expression_text
        return expression_text(self)

    def _pretty(self, printer):
        from .render.text import expression_pretty
        return expression_pretty(self)
