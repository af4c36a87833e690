"""The layers of symrnn: every import points down, none in a circle, and the data reaches
the consumers above it only through the registry (symrnn.plugins).

Imports are read from the source with ``ast``, those inside functions (imported when
called) too: an import inside a method is still a dependency."""
import ast
from pathlib import Path

import pytest

import symrnn
from symrnn import plugins

PACKAGE = Path(symrnn.__file__).resolve().parent

# bottom (0) to top: a module may import modules of lower layers and of its own package
LAYERS = {
    "symrnn.plugins": 0,
    "symrnn.display": 1,
    "symrnn.ops": 2,
    "symrnn.model": 3,
    "symrnn.graph": 4,
    "symrnn.derivation": 5,
    "symrnn.checking": 6, "symrnn.codegen": 6, "symrnn.render": 6,
    "symrnn.backends": 7, "symrnn.mistakes": 7,
    "symrnn.documents": 8, "symrnn.grading": 8,     # grading reads the table of mistakes
    "symrnn.check": 9, "symrnn.testing": 9, "symrnn.exercise": 9,
    "symrnn.cli": 10,
    "symrnn.__main__": 11,
}
ROOT = 12  # symrnn/__init__.py: the composition root fills the registry


def _is_module(name):
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports():
    """[(module, imported module, line)] of every module of symrnn."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("symrnn") and _is_module(name):
                    found.append((module, name, node.lineno))
    return found


def layer(module):
    """(layer, package) of a module: the longest entry of LAYERS it belongs to."""
    if module == "symrnn":
        return ROOT, "symrnn"
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")),
               key=len, default=None)
    return (LAYERS[best], best) if best is not None else (None, None)


def upward(found):
    out = []
    for source, target, line in found:
        if target == "symrnn":
            continue  # the package itself, run first whatever is imported
        (low, home), (high, there) = layer(source), layer(target)
        if home != there and (low is None or high is None or high >= low):
            out.append(f"{source} (line {line}) imports {target}")
    return out


def test_every_module_has_a_layer():
    modules = {_module(p) for p in PACKAGE.rglob("*.py")} - {"symrnn"}
    assert [m for m in sorted(modules) if layer(m)[0] is None] == []


def test_no_import_points_up():
    assert upward(imports()) == []


def test_the_layer_check_can_fail():
    # mutation: the derivation importing the renderer for its display, as it once did
    found = imports() + [("symrnn.derivation.derive", "symrnn.render.notebook", 1),
                         ("symrnn.model.cell", "symrnn.render.text", 1),
                         ("symrnn.render.sheet", "symrnn.checking.gradient_table", 1)]
    assert len(upward(found)) == 3


def top_level_imports():
    """{module: {module it imports when it is imported}} (relative imports)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    graph.setdefault(module, set()).add(sub if _is_module(sub) else target)
    return graph


def circle(graph):
    """A circle of modules in ``graph`` (the packages' faces left out), or None."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph.get(m, ())):
            if n == m or n in PACKAGES:
                continue
            if state.get(n) == "open":
                return path + [m, n]
            if n not in state:
                found = visit(n, path + [m])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [])
            if found:
                return found
    return None


def test_no_circle_of_files():
    assert circle(top_level_imports()) is None


def test_the_circle_check_can_fail():
    # mutation: the circle that render/terms.py broke (the printer and its line breaking)
    graph = top_level_imports()
    graph["symrnn.render.breaking"].add("symrnn.render.latex_printer")
    assert circle(graph) is not None


PACKAGES = {"symrnn", "symrnn.model", "symrnn.graph", "symrnn.derivation", "symrnn.checking",
            "symrnn.codegen", "symrnn.render", "symrnn.backends"}  # faces: only hand on


# ---- the registry -----------------------------------------------------------------------
def test_every_hook_resolves_to_a_function():
    for hook, target in plugins.hooks().items():
        if hook in ("derivation.torch", "derivation.jax"):
            pytest.importorskip(hook.split(".")[1])
        assert callable(plugins.resolve(hook)), hook


def test_the_data_shows_itself_through_the_registry(monkeypatch):
    d = symrnn.derive(symrnn.ElmanRNN())
    monkeypatch.setitem(plugins._ENTRIES, "derivation.text", lambda d: "through the registry")
    monkeypatch.setitem(plugins._RESOLVED, "derivation.text", lambda d: "through the registry")
    assert str(d) == "through the registry"


def test_an_unknown_hook_is_named():
    with pytest.raises(LookupError, match="'nothing.here'"):
        plugins.call("nothing.here")
    with pytest.raises(ValueError, match="target"):
        plugins.register("x", "no colon")


def test_a_missing_backend_says_what_to_install(monkeypatch):
    d = symrnn.derive(symrnn.ElmanRNN())
    monkeypatch.setitem(plugins._ENTRIES, "derivation.jax", "symrnn_no_such_module:function")
    monkeypatch.delitem(plugins._RESOLVED, "derivation.jax", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'symrnn\[jax\]'"):
        d.jax()
