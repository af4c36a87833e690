"""The statement IR and its printers: parentheses from precedence, outputs as data,
the Numba printer's two differences; and no string surgery in code generation."""
import ast
import importlib
import inspect

import pytest

import pkgutil

import symrnn.codegen
from symrnn.codegen import emit, ir

W, Q, a, b, c = (ir.Name(n) for n in ("W", "Q", "a", "b", "c"))


@pytest.mark.parametrize("node, code", [
    (ir.Transpose(ir.add(W, Q)), "(W + Q).T"),
    (ir.Transpose(ir.sub(W, ir.Transpose(W))), "(W - W.T).T"),
    (ir.sub(a, ir.sub(b, c)), "a - (b - c)"),
    (ir.sub(ir.sub(a, b), c), "a - b - c"),
    (ir.mul(ir.add(a, b), c), "(a + b) * c"),
    (ir.Neg(ir.add(a, b)), "-(a + b)"),
    (ir.BinOp("**", ir.Neg(a), ir.Const(2)), "(-a)**2"),
    (ir.Index(ir.add(a, b), ir.Slice(ir.Const(1), None)), "(a + b)[1:]"),
    (ir.helper("dot", a, ir.Transpose(W), out=b), "_dot(a, W.T, b)"),
    (ir.numpy_call("tanh", a, out=a), "_np.tanh(a, a)"),
    (ir.Tuple((a,)), "(a,)"),
    (ir.Const(-0.5), "-0.5"),
])
def test_numpy_printer(node, code):
    assert emit.NumPyPrinter().doprint(node) == code


def test_numba_printer_differs_in_helpers_and_rows_only():
    loop = ir.For(ir.Name("_t"), ir.Const(1), ir.Name("_T"), 1, (
        ir.Update(ir.Index(ir.Rows(a), ir.Name("_t")), "+", ir.helper("dot", b, W)),))
    assert emit.NumPyPrinter().doprint(loop) == (
        "for _t in _range(1, _T, 1):\n    _list(a)[_t] += _dot(b, W)")
    assert emit.NumbaPrinter().doprint(loop) == (
        "for _t in _range(1, _T, 1):\n    a[_t] += _nb_dot(b, W)")


@pytest.mark.parametrize("name", ["if", "a b", "x)\nimport os", ""])
def test_a_name_is_one_identifier(name):
    with pytest.raises(ValueError):
        ir.Name(name)


def _codegen_modules():
    """Every module of symrnn.codegen that builds or prints code (not the runtime,
    which the generated module copies, nor the disk cache)."""
    for info in pkgutil.walk_packages(symrnn.codegen.__path__, "symrnn.codegen."):
        if info.name.rpartition(".")[2] not in ("runtime", "runtime_numba", "numba_cache"):
            yield importlib.import_module(info.name)


def test_no_string_surgery_in_code_generation():
    # the modules that build and print code: no text operations on code
    forbidden = {"replace", "startswith", "endswith", "strip", "rstrip", "lstrip"}
    modules = list(_codegen_modules())
    assert len(modules) > 20
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        calls = {n.func.attr for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & forbidden, (module.__name__, calls & forbidden)


@pytest.mark.parametrize("backend", ["numpy", "numba", "readable"])
def test_one_import_block_at_the_top(backend):
    # the copied runtime modules' imports gathered once, before any other statement
    from symrnn.codegen.lambdify import module_source
    tree = ast.parse(module_source(symrnn.derive(symrnn.LSTM()), backend))
    kinds = [isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body[1:]]
    assert kinds[:kinds.index(False)].count(True) >= 2 and True not in kinds[kinds.index(False):]
    imported = [(type(n).__name__, getattr(n, "module", None), a.name, a.asname)
                for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names]
    assert len(imported) == len(set(imported))
