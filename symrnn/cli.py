"""symrnn: derive, check and compile the BPTT gradients of recurrent networks.

Commands:
  derive   print the forward equations, the adjoint recurrences and the
           closed-form gradients
  check    compare the generated gradients with finite differences and with an
           independent NumPy BPTT on random problems in every layout, and print a
           table of relative errors; or check your own BPTT (--against)
  codegen  write a standalone NumPy module (no symrnn or SymPy import) with the
           forward pass and the gradients
  sheet    write the solution sheet (LaTeX, and the PDF with --pdf)
  grade    check a student's formula for a gradient: right, or which typical mistake

Exit codes: 0 success, 1 a failed check or an I/O failure, 2 bad arguments.
"""
import argparse
import os
import sys

from .ops import activations

CELLS = ("elman", "lstm", "gru")
ACTIVATIONS = tuple(activations()) + ("identity",)  # as symrnn.model.presets
OUTPUTS = ("softmax_ce", "mse", "upstream")
ELMAN_ONLY = ("activation", "output", "bias")
CELL_FILE_COMMANDS = ("derive", "check", "codegen")


class UsageError(Exception):
    """Bad arguments: exit code 2."""

    def __init__(self, message, prog=None):
        super().__init__(message)
        self.prog = prog


class Failure(Exception):
    """A failed check or an I/O failure: exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message instead of the usage block."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')", self.prog)


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _size_assignment(text):
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=N such as D=5, got {text!r}")
    return name.strip(), _positive(value.strip())


def _model_options(parser, cell_file=False):
    group = parser.add_argument_group("model options")
    group.add_argument("--cell", choices=CELLS, default="elman",
                       help="the recurrent cell (default: elman)")
    if cell_file:
        group.add_argument("--cell-file", metavar="FILE", default=None,
                           help="a cell written in the text syntax (see the README, "
                                "'Define your own cell'), instead of --cell")
    group.add_argument("--activation", choices=ACTIVATIONS, default=None,
                       help="hidden activation of the Elman RNN (default: tanh)")
    group.add_argument("--output", choices=OUTPUTS, default=None,
                       help="output and loss of the Elman RNN (default: softmax_ce); "
                            "upstream: y is the gradient dL/do^(t) passed back by "
                            "another network")
    group.add_argument("--bias", action="store_true", default=None,
                       help="add the biases b and c to the Elman RNN")


def build_parser():
    parser = _Parser(prog="symrnn", description=__doc__.split("\n\n")[0],
                     epilog="Run 'symrnn COMMAND --help' for the options of a command.\n"
                            "Exit codes: 0 success, 1 a failed check or an I/O failure, "
                            "2 bad arguments.",
                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    derive = sub.add_parser("derive", allow_abbrev=False,
                            help="print the closed-form gradients",
                            description="Print the forward equations of one step, the "
                                        "adjoint recurrences of BPTT and the closed-form "
                                        "gradients, as derived by the engine.")
    derive.add_argument("--format", choices=("text", "latex"), default="text",
                        help="plain text (default) or LaTeX")
    _model_options(derive, cell_file=True)

    check = sub.add_parser("check", allow_abbrev=False,
                           help="check the gradients numerically",
                           description="Check the generated gradients on random problems "
                                       "(random sizes; one sequence and batches; integer "
                                       "labels and one-hot targets; initial states "
                                       "omitted, shared and per sequence; float32) against "
                                       "central finite differences of the generated loss "
                                       "and against an independent, hand-written NumPy "
                                       "BPTT; print the relative errors and the seed. With "
                                       "--against, check your own BPTT function instead. "
                                       "Exit code 1 when a check fails.")
    check.add_argument("--T", type=_positive, default=None, metavar="T",
                       help="sequence length (default: random, 1 to 6)")
    check.add_argument("--hidden", type=_positive, default=None, metavar="D",
                       help="hidden size D (default: random, 1 to 7)")
    check.add_argument("--inputs", type=_positive, default=None, metavar="N",
                       help="input size N (default: random, 1 to 7)")
    check.add_argument("--outputs", type=_positive, default=None, metavar="M",
                       help="output size M (default: random, 1 to 7)")
    check.add_argument("--size", type=_size_assignment, action="append", default=[],
                       metavar="NAME=N", help="the value of any size of the cell, e.g. "
                                               "--size H=8 (repeatable)")
    check.add_argument("--batch", type=_positive, default=None, metavar="B",
                       help="batch size of the batched problems (default: random, 2 to 4)")
    check.add_argument("--seed", type=_seed, default=None, metavar="S",
                       help="random seed of the problems (default: a fresh one, printed)")
    check.add_argument("--backend", choices=("numpy", "numba"), default="numpy",
                       help="the generated code to check (numba: compiled on the first "
                            "call, which takes seconds; default: numpy)")
    check.add_argument("--against", metavar="MODULE:FUNCTION", default=None,
                       help="check your function f(params, x, y, h0) -> (loss, grads) "
                            "against the derived gradients and finite differences "
                            "(imported from the current directory or the Python path)")
    _model_options(check, cell_file=True)

    codegen = sub.add_parser("codegen", allow_abbrev=False,
                             help="write a standalone NumPy module",
                             description="Write a Python module that needs only NumPy, "
                                         "with loss_and_gradients(params, x, y, h0=None) "
                                         "and loss(params, x, y, h0=None).")
    codegen.add_argument("-o", "--out", metavar="FILE", default="-",
                         help="where to write the module (default: standard output)")
    codegen.add_argument("--backend", choices=("numpy", "numba"), default="numpy",
                         help="numba: the kernels are compiled by Numba on their first "
                              "call (the module then needs Numba too; default: numpy)")
    _model_options(codegen, cell_file=True)

    sheet = sub.add_parser("sheet", allow_abbrev=False,
                           help="write the solution sheet, or the derivation sheet of a cell",
                           description="Write the solution sheet of exercise sheet 08 "
                                       "(sheet08.tex, and sheet08.pdf when TeX is installed); "
                                       "with --cell lstm|gru or --cell-file FILE, the "
                                       "standalone derivation sheet of that cell "
                                       "(derivation-<name>.tex/.pdf).")
    sheet.add_argument("--out", metavar="DIR", default="output",
                       help="output directory (default: output)")
    sheet.add_argument("--pdf", action="store_true", default=None,
                       help="compile the PDF (needs TeX; fails if it is missing)")
    _model_options(sheet)
    if not any("--cell-file" in a.option_strings for a in sheet._actions):
        sheet.add_argument("--cell-file", metavar="FILE", default=None,
                           help="a cell in the text syntax (see symrnn.parse_cell): write "
                                "its derivation sheet")
    _grade_parser(sub)
    return parser


def _grade_parser(sub):
    grade = sub.add_parser("grade", allow_abbrev=False,
                           help="check an answer against the derived gradient",
                           description="Check a formula for a gradient, written in LaTeX as "
                                       "students type it or in the text syntax, against the "
                                       "derived one (exactly where possible, else at random "
                                       "networks); name the typical mistake it makes and "
                                       "give partial credit. Exit code 0 for a right answer, "
                                       "1 for a wrong one, 2 for an answer that cannot be "
                                       "read or bad arguments.")
    grade.add_argument("--gradient", required=True, metavar="KEY",
                       help="what the answer gives: a parameter (W, U, V, b, ...), an initial "
                            "state (h0) or an adjoint at step t (dL/dh)")
    source = grade.add_mutually_exclusive_group(required=True)
    source.add_argument("--answer", metavar="TEXT", help="the answer, e.g. "
                        "'\\sum_{t=1}^{T} \\delta^{(t)} h^{(t-1)\\top}'")
    source.add_argument("--answer-file", metavar="FILE",
                        help="read the answer from FILE ('-': standard input)")
    grade.add_argument("--syntax", choices=("auto", "latex", "text"), default="auto",
                       help="how the answer is written (default: auto)")
    grade.add_argument("--json", action="store_true",
                       help="print the result as JSON (correct, score, mistakes, parts, "
                            "feedback)")
    _model_options(grade, cell_file=True)


def _cell_from_file(args):
    import re

    import symrnn

    given = ["--cell"] if args.cell != "elman" else []
    given += [f"--{o}" for o in ELMAN_ONLY if getattr(args, o) is not None]
    if given:
        raise UsageError(f"argument --cell-file: cannot be combined with {given[0]}")
    path = args.cell_file
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"argument --cell-file: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"argument --cell-file: {path} is not UTF-8 text") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", stem) else "cell"
    try:
        return symrnn.parse_cell(text, name=name)
    except ValueError as e:
        raise UsageError(f"{path}: {' '.join(str(e).split())}") from None


def make_cell(args):
    """The cell that the model options describe."""
    import symrnn

    if args.command in CELL_FILE_COMMANDS and args.cell_file is not None:
        return _cell_from_file(args)  # (the sheet reads its --cell-file itself)
    if args.cell != "elman":
        for option in ELMAN_ONLY:
            if getattr(args, option) is not None:
                raise UsageError(f"argument --{option}: applies to --cell elman only, "
                                 f"not to --cell {args.cell}")
        return symrnn.LSTM() if args.cell == "lstm" else symrnn.GRU()
    try:
        return symrnn.ElmanRNN(activation=args.activation or "tanh",
                               output=args.output or "softmax_ce", bias=bool(args.bias))
    except ValueError as e:
        raise UsageError(str(e)) from None


# -- the derivation as plain text ----------------------------------------------------

def _text_printer():
    from sympy import HadamardProduct, MatAdd, MatMul, OneMatrix
    from sympy.printing.str import StrPrinter

    from .model.nodes import Elementwise

    class TextPrinter(StrPrinter):
        """h^(t-1), dL/dh^(t), W^T v, a .* b, sum_{t=1}^{T} ... in plain ASCII."""

        def _wrap(self, expr):
            text = self._print(expr)
            compound = isinstance(expr, (MatAdd, HadamardProduct)) or (
                isinstance(expr, MatMul) and expr.as_coeff_matrices()[0] != 1)
            return f"({text})" if compound else text

        def _print_StepVar(self, expr):
            return f"{expr.name}^({str(expr.time).replace(' ', '')})"

        def _print_Adjoint(self, expr):
            return f"dL/d{self._print(expr.var)}"

        def _print_MatrixSymbol(self, expr):
            return expr.name

        def _print_SumOverTime(self, expr):
            lo, hi = expr.limits
            # a sum of terms in parentheses: the sum takes the product after it
            return f"sum_{{{expr.index}={lo}}}^{{{hi}}} {self._wrap(expr.term)}"

        def _print_Elementwise(self, expr):
            return f"{expr.text}({self._print(expr.arg)})"

        def _print(self, expr, **kwargs):
            if isinstance(expr, Elementwise):
                return self._print_Elementwise(expr)
            return super()._print(expr, **kwargs)

        def _print_OneMatrix(self, expr):
            return "1^T" if expr.shape[0] == 1 and expr.shape[1] != 1 else "1"

        def _print_ZeroMatrix(self, expr):
            return "0"

        def _print_Identity(self, expr):
            return "1" if expr.shape == (1, 1) else "I"

        def _print_Transpose(self, expr):
            if isinstance(expr.arg, OneMatrix):
                return "1^T"
            if isinstance(expr.arg, MatMul):     # (A x)^T, not A x^T
                return f"({self._print(expr.arg)})^T"
            return f"{self._wrap(expr.arg)}^T"

        def _print_MatMul(self, expr):
            coeff, factors = expr.as_coeff_matrices()
            body = " ".join(self._wrap(f) for f in factors)
            if coeff == 1:
                return body
            if coeff == -1:
                return f"-{body}"
            return f"{self._print(coeff)} {body}"

        def _print_HadamardProduct(self, expr):
            # a product in a factor gets parentheses: (W^T v) .* r, not W^T v .* r
            return " .* ".join(f"({self._print(a)})" if isinstance(a, MatMul)
                               else self._wrap(a) for a in expr.args)

        def _print_HadamardPower(self, expr):
            # (A x).^2, not A x.^2, which reads as A (x.^2)
            base = (f"({self._print(expr.base)})" if isinstance(expr.base, MatMul)
                    else self._wrap(expr.base))
            return f"{base}.^{self._print(expr.exp)}"

        def _print_MatAdd(self, expr):
            terms = [self._print(a) for a in expr.args]
            terms = [t for t in terms if not t.startswith("-")] + \
                    [t for t in terms if t.startswith("-")]  # 1 - h.^2, not -h.^2 + 1
            text = terms[0]
            for t in terms[1:]:
                text += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
            return text

    return TextPrinter()


def _sections(derivation):
    """(title, [(lhs, rhs), ...]) of what ``derive`` prints, as expressions."""
    from .graph.unroll import shared
    from .model.nodes import Adjoint, StepVar

    cell = derivation.cell
    states = {f"{s.name}0": s for s in cell.states}
    gradients = []
    for name, g in derivation.gradients.items():
        if name in states:
            target = StepVar(states[name].name, 0, *states[name].shape)
        else:
            target = cell.param(name)
        gradients.append((Adjoint(target), g))
    initial = ", ".join(f"{s.name}^(0)" for s in cell.states)
    return [
        (f"Forward, for t = 1, ..., T ({initial} given)",
         [(lhs, shared(cell, rhs)) for lhs, rhs in derivation.step]),
        ("Backward, for t = T, ..., 1 (a term at step T+1 is zero)",
         list(derivation.adjoints.items())),
        ("so at t = T", list(derivation.terminal.items())),
        ("Gradients", gradients),
    ]


def derivation_latex(derivation):
    """The same as ``derivation_text``, as LaTeX ``align*`` blocks (amsmath, bm)."""
    # the LaTeX printer of the solution sheet
    from .render.latex_printer import latex

    cell = derivation.cell
    lines = [f"% {cell.name}: BPTT derived by symrnn; needs \\usepackage{{amsmath,bm}}"]
    for k, (title, equations) in enumerate(_sections(derivation)):
        rows = [f"  {latex(lhs, cell)} &= {latex(rhs, cell)}" for lhs, rhs in equations]
        if k == 0:
            rows.append(r"  L &= \sum_{t=1}^{T} L^{(t)}")
        lines += [f"% {title}", r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
    return "\n".join(lines)


def derivation_text(derivation):
    """The forward equations, the adjoint recurrences and the gradients, as text."""
    cell, p = derivation.cell, _text_printer()
    lines = [cell.name]
    for k, (title, equations) in enumerate(_sections(derivation)):
        lines += ["", f"{title}:"]
        lines += [f"  {p.doprint(lhs)} = {p.doprint(rhs)}" for lhs, rhs in equations]
        if k == 0:
            lines.append("  L = sum_{t=1}^{T} L^(t)")
    lines += ["", "A B is the matrix product, A^T the transpose, a .* b and a.^2 act "
              "entry by entry, 1 is a vector of ones."]
    return "\n".join(lines)


# -- commands ----------------------------------------------------------------------

def _derive(cell):
    """The derivation, or a UsageError for a cell the engine cannot handle."""
    from .derivation import derive

    try:
        return derive(cell)
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None


def run_derive(args, cell):
    derivation = _derive(cell)
    print(derivation_latex(derivation) if args.format == "latex"
          else derivation_text(derivation))
    return 0


def _import_function(spec):
    """The function ``module:function`` names (the user's own code, by request)."""
    import importlib
    import re

    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", spec):
        raise UsageError(f"argument --against: expected MODULE:FUNCTION such as "
                         f"my_bptt:bptt, got {spec!r}")
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as 'python -m' does
    try:
        value = importlib.import_module(module_name)
    except Exception as e:
        raise UsageError(f"argument --against: cannot import {module_name!r}: "
                         f"{type(e).__name__}: {' '.join(str(e).split())}") from None
    for part in attribute.split("."):
        value = getattr(value, part, None)
    if not callable(value):
        raise UsageError(f"argument --against: {module_name!r} has no function {attribute!r}")
    return value


def _check_sizes(args):
    sizes = dict(args.size)
    for option, name in (("hidden", "D"), ("inputs", "N"), ("outputs", "M")):
        if getattr(args, option) is not None:
            sizes[name] = getattr(args, option)
    return sizes


def run_check(args, cell):
    from .check import check, random_seed

    seed = random_seed() if args.seed is None else args.seed
    derivation = _derive(cell)
    if args.against is not None:
        from .testing import check_bptt

        function = _import_function(args.against)
        try:
            check_bptt(function, derivation, seed=seed, T=args.T, sizes=_check_sizes(args),
                       batch=args.batch)
        except AssertionError as e:
            print(e)
            return 1
        except ValueError as e:  # a size the cell does not have
            raise UsageError(" ".join(str(e).split())) from None
        print(f"{args.against}: loss and gradients agree with the derived BPTT of "
              f"{cell.name} and with finite differences (seed = {seed}; --seed {seed} "
              "repeats this run)")
        return 0
    try:
        function = derivation.lambdify(args.backend)
    except ImportError as e:  # Numba is not installed
        raise Failure(str(e)) from None
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None
    try:
        report = check(derivation, T=args.T, batch=args.batch, seed=seed,
                       sizes=_check_sizes(args), function=function)
    except ValueError as e:  # a size the cell does not have
        raise UsageError(" ".join(str(e).split())) from None
    print(report.table())
    return 0 if report.passed else 1


def run_codegen(args, cell):
    from .codegen.lambdify import module_source

    derivation = _derive(cell)
    try:
        source = module_source(derivation, args.backend)
    except ImportError as e:  # Numba is not installed
        raise Failure(str(e)) from None
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None
    if args.out == "-":
        sys.stdout.write(source)
        return 0
    try:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(source)
    except OSError as e:
        raise Failure(f"cannot write {args.out}: {e.strerror or e}") from None
    print(args.out)
    return 0


def _sheet_cell(args, cell):
    """The cell of ``symrnn sheet`` and its source text: --cell-file, else the model options."""
    if args.cell_file is None:
        return cell, None
    if args.cell != "elman" or any(getattr(args, o) is not None for o in ELMAN_ONLY):
        raise UsageError("argument --cell-file: not allowed with --cell, --activation, "
                         "--output or --bias")
    import symrnn
    try:
        with open(args.cell_file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"argument --cell-file: cannot read {args.cell_file}: "
                         f"{e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"argument --cell-file: {args.cell_file} is not UTF-8 text") from None
    try:
        name = os.path.splitext(os.path.basename(args.cell_file))[0] or "cell"
        return symrnn.parse_cell(text, name=name), text
    except ValueError as e:
        raise UsageError(f"{args.cell_file}: {' '.join(str(e).split())}") from None


def run_sheet(args, cell):
    try:
        from .render.sheet import write_sheet
    except ImportError as e:
        raise Failure(f"the solution sheet is not available: {e}") from None
    cell, source = _sheet_cell(args, cell)
    try:
        extra = {"source": source} if source is not None else {}
        paths = write_sheet(args.out, cell=cell, pdf=args.pdf, **extra)
    except OSError as e:
        where = e.filename or args.out
        raise Failure(f"cannot write {where}: {e.strerror or e}") from None
    except ValueError as e:  # a cell the sheet does not cover
        raise UsageError(" ".join(str(e).split())) from None
    except RuntimeError as e:  # SheetError: LaTeX failed; or --pdf without TeX
        message = " ".join(str(e).split()) or type(e).__name__
        raise Failure(message) from None
    for path in paths:
        print(path)
    return 0


def run_grade(args, cell):
    """Grade one answer: exit 0 right, 1 wrong (the feedback says why), 2 unreadable."""
    import json

    from .grading import AnswerSyntaxError, Grader

    if args.cell_file is not None:
        cell = _cell_from_file(args)
    if args.answer_file is not None:
        try:
            if args.answer_file == "-":
                answer = sys.stdin.read()
            else:
                with open(args.answer_file, encoding="utf-8") as f:
                    answer = f.read()
        except OSError as e:
            raise UsageError(f"argument --answer-file: cannot read {args.answer_file}: "
                             f"{e.strerror or e}") from None
        except UnicodeDecodeError:
            raise UsageError(f"argument --answer-file: {args.answer_file} is not UTF-8 "
                             "text") from None
    else:
        answer = args.answer
    try:
        grader = Grader(cell)
        result = grader.grade(answer, args.gradient, syntax=args.syntax)
    except AnswerSyntaxError as e:
        raise UsageError(e.one_line()) from None
    except (ValueError, NotImplementedError) as e:
        message = " ".join(str(e).split())
        if message.startswith("key: "):
            message = "argument --gradient: " + message[len("key: "):]
        raise UsageError(message) from None
    if args.json:
        print(json.dumps({
            "gradient": result.key, "correct": result.correct, "score": result.score,
            "exact": result.exact,
            "mistakes": [{"key": m.key, "name": m.name, "sentence": m.sentence}
                         for m in result.mistakes],
            "parts": [{"name": p.name, "weight": p.weight, "right": p.right}
                      for p in result.parts],
            "feedback": result.feedback}, indent=2))
    else:
        print(result.feedback)
    return 0 if result.correct else 1


COMMANDS = {"derive": run_derive, "check": run_check, "codegen": run_codegen,
            "sheet": run_sheet, "grade": run_grade}


def main(argv=None):
    """Run the command line; returns the exit code (never raises, prints no traceback)."""
    parser = build_parser()
    prog = "symrnn"
    try:
        args = parser.parse_args(argv)
        prog = f"symrnn {args.command}"
        cell = make_cell(args)
        return COMMANDS[args.command](args, cell)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        _say(f"{e.prog or prog}: error: {e}")
        return 2
    except Failure as e:
        _say(f"{prog}: error: {e}")
        return 1
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (symrnn codegen | head): stay quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:  # a bug: one line, unless SYMRNN_DEBUG asks for the traceback
        if os.environ.get("SYMRNN_DEBUG"):
            raise
        _say(f"{prog}: internal error: {type(e).__name__}: {' '.join(str(e).split())} "
             "(set SYMRNN_DEBUG=1 for the traceback)")
        return 1


def _say(message):
    print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
