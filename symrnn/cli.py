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
  exercise write variants of the exercise for a course: sheets, solutions, answer key,
           a Moodle quiz of numerical questions

Exit codes: 0 success, 1 a failed check or an I/O failure, 2 bad arguments.
"""
import argparse
import os
import sys

from . import __version__

# Nothing heavy is imported at the top of this module (symrnn/__init__.py imports
# nothing either): SymPy loads inside main(), where a Ctrl-C is one line, not a traceback.
CELLS = ("elman", "lstm", "gru")
OUTPUTS = ("softmax_ce", "mse", "upstream")
ELMAN_ONLY = ("activation", "output", "bias")
CELL_FILE_COMMANDS = ("derive", "check", "codegen")
AGAINST_TIMEOUT = 10.0   # seconds for one call of the user's function (--timeout)
IMPORT_TIMEOUT = 60.0    # at least this long for the import of its module (torch, jax)
MAX_SIZE = 2 ** 31 - 1   # T, sizes, B: larger ones are no array shape NumPy can make


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
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SIZE}, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _size_assignment(text):
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=N such as D=5, got {text!r}")
    return name.strip(), _positive(value.strip())


def _notation_option(parser):
    from .render.notation import builtin_notations
    parser.add_argument("--notation", metavar="NAME|FILE", default=None,
                        help="a notation profile: " + ", ".join(builtin_notations())
                             + " (default: goodfellow), or a .toml file (see the README, "
                               "'Notation profiles')")


def _activations():
    from .model.presets import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _model_options(parser, cell_file=False):
    group = parser.add_argument_group("model options")
    group.add_argument("--cell", choices=CELLS, default="elman",
                       help="the recurrent cell (default: elman)")
    if cell_file:
        group.add_argument("--cell-file", metavar="FILE", default=None,
                           help="a cell written in the text syntax (see the README, "
                                "'Define your own cell'), instead of --cell")
    group.add_argument("--activation", choices=_activations(), default=None,
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
    parser.add_argument("--version", action="version", version=f"symrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    derive = sub.add_parser("derive", allow_abbrev=False,
                            help="print the closed-form gradients",
                            description="Print the forward equations of one step, the "
                                        "adjoint recurrences of BPTT and the closed-form "
                                        "gradients, as derived by the engine.")
    derive.add_argument("--format", choices=("text", "latex"), default="text",
                        help="plain text (default) or LaTeX")
    _notation_option(derive)
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
                            "(imported from the current directory or the Python path; it "
                            "runs in a child process)")
    check.add_argument("--labels", action="store_true",
                       help="with --against: pass y as integer labels (T,) instead of "
                            "one-hot rows (T, M)")
    check.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                       help="with --against: stop a call of your function that takes "
                            f"longer (default: {AGAINST_TIMEOUT:g}; the import of its "
                            f"module may take up to {IMPORT_TIMEOUT:g} s or SECONDS)")
    _model_options(check, cell_file=True)

    codegen = sub.add_parser("codegen", allow_abbrev=False,
                             help="write a standalone NumPy module",
                             description="Write a Python module that needs only NumPy, "
                                         "with loss_and_gradients(params, x, y, h0=None) "
                                         "and loss(params, x, y, h0=None).")
    codegen.add_argument("-o", "--out", metavar="FILE", default="-",
                         help="where to write the module (default: standard output)")
    codegen.add_argument("--backend", choices=_backends(), default="numpy",
                         help="numba: the kernels are compiled by Numba on their first "
                              "call (the module then needs Numba too); readable: one "
                              "loop over the steps forward, one backward, with the "
                              "sheet's names and equations (default: numpy)")
    codegen.add_argument("--dump-ir", metavar="PASS", default=None,
                         help="write the code generator's intermediate representation "
                              "after the pass PASS instead of the module ('list': the "
                              "backend's passes, one a line)")
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
    _notation_option(sheet)
    for text in ("title", "course", "author"):
        sheet.add_argument(f"--{text}", metavar="TEXT", default=None,
                           help=f"the document's {text} (plain text; default: the notation "
                                "profile's, else the document's own)")
    _model_options(sheet)
    if not any("--cell-file" in a.option_strings for a in sheet._actions):
        sheet.add_argument("--cell-file", metavar="FILE", default=None,
                           help="a cell in the text syntax (see symrnn.parse_cell): write "
                                "its derivation sheet")
    _grade_parser(sub)
    _exercise_parser(sub)
    return parser


def _exercise_parser(sub):
    exercise = sub.add_parser(
        "exercise", allow_abbrev=False, help="write variants of the exercise for a course",
        description="Write N variants of exercise sheet 08, each on its own network drawn "
                    "from a family: exercise-K.tex and solution-K.tex (and their PDFs when "
                    "TeX is installed), answer-key.json, and moodle.xml (numerical questions "
                    "on small concrete numbers). The same seed gives the same files. A "
                    "family option takes a comma-separated list of choices; --family reads "
                    "them from a TOML file (the options given here replace its keys).")
    exercise.add_argument("--variants", type=_positive, required=True, metavar="N",
                          help="how many variants (one per student)")
    exercise.add_argument("--seed", type=_seed, required=True, metavar="S",
                          help="the seed that draws the cells and the numbers")
    exercise.add_argument("--out", metavar="DIR", required=True,
                          help="the output folder (created; files in it are replaced)")
    exercise.add_argument("--family", metavar="FILE", default=None,
                          help="a TOML file with the family's choices (keys as the options "
                               "below)")
    group = exercise.add_argument_group("family options (comma-separated choices)")
    group.add_argument("--activation", metavar="LIST", default=None,
                       help="tanh, sigmoid, relu (default: all three)")
    group.add_argument("--bias", metavar="LIST", default=None,
                       help="no, yes (default: both)")
    group.add_argument("--head", metavar="LIST", default=None,
                       help="softmax, linear, sigmoid (default: softmax, linear)")
    group.add_argument("--loss", metavar="LIST", default=None,
                       help="cross-entropy, squared-error (default: both; cross-entropy is "
                            "not drawn with a linear head)")
    group.add_argument("--gate", metavar="LIST", default=None,
                       help="none, update, reset (default: all three)")
    group.add_argument("--notation", metavar="LIST", default=None,
                       help="notation profiles: names or .toml files (default: goodfellow)")
    exercise.add_argument("--no-numerical", dest="numerical", action="store_false",
                          help="without the numerical variant (moodle.xml)")
    output = exercise.add_mutually_exclusive_group()
    output.add_argument("--pdf", action="store_true", default=None,
                        help="compile the PDFs (needs TeX; fails if it is missing)")
    output.add_argument("--tex-only", dest="pdf", action="store_false",
                        help="write the .tex files only")
    for text in ("title", "course", "author"):
        exercise.add_argument(f"--{text}", metavar="TEXT", default=None,
                              help=f"the sheets' {text} (plain text)")


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
    grade.add_argument("--key", metavar="FILE", default=None,
                       help="the answer-key.json of 'symrnn exercise': grade for the cell and "
                            "the notation of --variant K (instead of the model options)")
    grade.add_argument("--variant", type=_positive, default=None, metavar="K",
                       help="with --key: the variant's number")
    _model_options(grade, cell_file=True)


_KINDS = (("S_ISDIR", "a directory"), ("S_ISFIFO", "a FIFO"), ("S_ISCHR", "a character device"),
          ("S_ISBLK", "a block device"), ("S_ISSOCK", "a socket"))


def read_cell_file(path):
    """The text of a --cell-file: a regular file of UTF-8 text (a BOM allowed) within
    the parser's limit. Anything else is a UsageError before it is read: a FIFO would
    block the open and /dev/zero never ends, so at most the limit + 1 characters are read."""
    import stat

    from .model.parse import MAX_CHARACTERS

    def refuse(why):
        return UsageError(f"argument --cell-file: {path} {why}")

    try:  # O_NONBLOCK: opening a FIFO that no one writes to returns at once
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise UsageError(f"argument --cell-file: cannot read {path}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((k for test, k in _KINDS if getattr(stat, test)(mode)), "not a file")
        raise refuse(f"is {kind}, not a regular file: write the cell to a file")
    with open(fd, encoding="utf-8-sig", errors="strict") as f:
        try:
            text = f.read(MAX_CHARACTERS + 1)
        except UnicodeDecodeError:
            raise refuse("is not UTF-8 text") from None
        except OSError as e:
            raise UsageError(f"argument --cell-file: cannot read {path}: "
                             f"{e.strerror or e}") from None
    if len(text) > MAX_CHARACTERS:
        raise refuse(f"has more than {MAX_CHARACTERS} characters, the limit of a cell")
    return text


def _cell_from_file(args):
    import re

    import symrnn

    given = ["--cell"] if args.cell != "elman" else []
    given += [f"--{o}" for o in ELMAN_ONLY if getattr(args, o) is not None]
    if given:
        raise UsageError(f"argument --cell-file: cannot be combined with {given[0]}")
    path = args.cell_file
    text = read_cell_file(path)
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


# -- commands ----------------------------------------------------------------------

def _derive(cell):
    """The derivation, or a UsageError for a cell the engine cannot handle."""
    from .derivation import derive

    try:
        return derive(cell)
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None


def _notation(args):
    """The notation profile of --notation, or a UsageError naming what is wrong."""
    from .render.notation import load_notation
    try:
        return load_notation(args.notation)
    except ValueError as e:
        raise UsageError(f"argument --notation: {' '.join(str(e).split())}") from None


def run_derive(args, cell):
    from .render.sections import derivation_align
    from .render.text import derivation_text

    notation = _notation(args)
    derivation = _derive(cell)
    try:
        print(derivation_align(derivation, notation) if args.format == "latex"
              else derivation_text(derivation, notation))
    except ValueError as e:  # a profile whose symbols collide in this cell
        raise UsageError(" ".join(str(e).split())) from None
    return 0


def _function_spec(spec):
    """(module, attribute) of --against MODULE:FUNCTION, or a UsageError with a hint."""
    import re

    module, sep, attribute = spec.partition(":")
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", spec) and not module.endswith(".py"):
        return module, attribute
    hint = ""
    if sep and module.endswith(".py") and re.fullmatch(r"[A-Za-z_][\w.]*", attribute):
        name = module[:-3].replace(os.sep, ".").replace("/", ".")
        if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
            hint = f"; drop the .py: --against {name}:{attribute}"
        else:
            hint = ("; drop the .py and run symrnn in the file's directory (a module "
                    "name, not a path)")
    raise UsageError(f"argument --against: expected MODULE:FUNCTION such as my_bptt:bptt, "
                     f"got {spec!r}{hint}")


def _import_function(spec):
    """The function ``module:function`` names (the user's own code, by request)."""
    import importlib

    module_name, attribute = _function_spec(spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as 'python -m' does
    try:
        value = importlib.import_module(module_name)
    except SystemExit as e:
        raise UsageError(f"argument --against: cannot import {module_name!r}: it called "
                         f"sys.exit({e.code!r})") from None
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


def _against(args, derivation, seed):
    """Check the user's BPTT (--against) in a child process; the exit code."""
    from .checking.isolated import Stopped, run

    spec, timeout = args.against, args.timeout or AGAINST_TIMEOUT
    cell = derivation.cell
    if args.labels and not cell.targets_are_distributions:
        raise UsageError(f"argument --labels: the targets of {cell.name} are not class "
                         "distributions, so they cannot be integer labels")

    def work(watch):  # in the child: everything that runs the user's code
        import functools
        import traceback

        from .testing import check_bptt

        try:
            with watch(max(timeout, IMPORT_TIMEOUT), importing=True):
                function = _import_function(spec)
        except UsageError as e:
            return "usage", str(e)

        @functools.wraps(function)
        def timed(*arguments, **keywords):
            with watch(timeout):
                return function(*arguments, **keywords)

        try:
            with _quiet_numpy():
                check_bptt(timed, derivation, seed=seed, T=args.T, sizes=_check_sizes(args),
                           batch=args.batch, labels=args.labels)
        except AssertionError as e:
            cause = e.__cause__
            theirs = "".join(traceback.format_exception(cause)) if cause is not None else ""
            return "failed", f"{e}\n\n{theirs}".rstrip()
        except ValueError as e:  # a size the cell does not have
            return "usage", " ".join(str(e).split())
        except MemoryError as e:
            return "memory", _memory(e)
        return "passed", None

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        kind, text = run(work, what=spec)
    except Stopped as e:
        raise Failure(f"{e} (--timeout {timeout:g})" if e.timed_out else str(e)) from None
    if kind == "usage":
        raise UsageError(text)
    if kind == "memory":
        raise Failure(text)
    if kind == "failed":
        print(text)
        return 1
    print(f"{spec}: loss and gradients agree with the derived BPTT of {cell.name} and "
          f"with finite differences (seed = {seed}; --seed {seed} repeats this run)")
    return 0


def run_check(args, cell):
    from .check import check, random_seed

    for option in ("labels", "timeout"):
        if getattr(args, option) and args.against is None:
            raise UsageError(f"argument --{option}: applies to --against only")
    if args.against is not None and args.backend != "numpy":
        raise UsageError("argument --backend: not with --against (your function is compared "
                         "with the derived gradients, whatever runs them)")
    seed = random_seed() if args.seed is None else args.seed
    derivation = _derive(cell)
    if args.against is not None:
        _function_spec(args.against)  # a malformed spec: exit 2 before any work
        return _against(args, derivation, seed)
    try:
        function = derivation.lambdify(args.backend)
    except ImportError as e:  # Numba is not installed
        raise Failure(str(e)) from None
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None
    slow = "Numba compiles the kernels (kept for later runs)" if args.backend == "numba" \
        else None
    try:
        with _quiet_numpy(), _Status("symrnn check", slow):
            report = check(derivation, T=args.T, batch=args.batch, seed=seed,
                           sizes=_check_sizes(args), function=function)
    except ValueError as e:  # a size the cell does not have
        raise UsageError(" ".join(str(e).split())) from None
    except MemoryError as e:
        raise Failure(_memory(e)) from None
    print(report.table())
    return 0 if report.passed else 1


def _memory(error):
    return f"not enough memory for problems of these sizes ({' '.join(str(error).split())})"


def _quiet_numpy():
    """No RuntimeWarning of NumPy on stderr: a check reports non-finite values itself."""
    import numpy as np

    return np.errstate(all="ignore")


def _backends():
    """The names of the code generator's backends (its registry, symrnn/codegen/targets.py)."""
    from .codegen.targets import TARGETS

    return tuple(TARGETS)


def run_codegen(args, cell):
    from .codegen import driver
    from .codegen.dump import dump
    from .codegen.targets import target

    if args.dump_ir == "list":
        source = "".join(f"{what}\n" for _, what in driver.passes(args.backend))
        return _write(args, source)
    if args.dump_ir is not None and args.dump_ir not in dict(driver.passes(args.backend)):
        raise UsageError(f"argument --dump-ir: the backend {args.backend!r} has no pass "
                         f"{args.dump_ir!r} (--dump-ir list shows its passes)")
    derivation = _derive(cell)
    try:
        if args.dump_ir is None:
            source = driver.source(derivation, args.backend)
        else:
            module = driver.run(derivation, args.backend, until=args.dump_ir)
            source = dump(module, target(args.backend).printer)
    except ImportError as e:  # Numba is not installed
        raise Failure(str(e)) from None
    except (ValueError, NotImplementedError) as e:
        raise UsageError(f"cell {cell.name!r}: {' '.join(str(e).split())}") from None
    return _write(args, source)


def _write(args, source):
    if args.out == "-":
        sys.stdout.write(source)
        return 0
    try:
        write_atomically(args.out, source)
    except OSError as e:
        raise Failure(f"cannot write {args.out}: {e.strerror or e}") from None
    print(args.out)
    return 0


def write_atomically(path, text):
    """Write ``text`` to ``path`` in one step: into a temporary file in the same
    directory, then renamed over ``path``. A failed write (a full disk, a file size
    limit) leaves the old file as it was and no temporary file behind. A path that
    is not a regular file (/dev/stdout, a FIFO) is written directly."""
    import stat
    import tempfile

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                     dir=directory)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:  # a new file: the permissions open() would give it
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        else:
            os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _sheet_cell(args, cell):
    """The cell of ``symrnn sheet`` and its source text: --cell-file, else the model options
    (a file name that is not plain ASCII letters, digits, '_', '.', '-' names it "cell")."""
    import re

    if args.cell_file is None:
        return cell, None
    if args.cell != "elman" or any(getattr(args, o) is not None for o in ELMAN_ONLY):
        raise UsageError("argument --cell-file: not allowed with --cell, --activation, "
                         "--output or --bias")
    import symrnn
    text = read_cell_file(args.cell_file)
    try:
        stem = os.path.splitext(os.path.basename(args.cell_file))[0]
        name = stem if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", stem) else "cell"
        return symrnn.parse_cell(text, name=name), text
    except ValueError as e:
        raise UsageError(f"{args.cell_file}: {' '.join(str(e).split())}") from None


def run_sheet(args, cell):
    try:
        from .documents import write_sheet
    except ImportError as e:
        raise Failure(f"the solution sheet is not available: {e}") from None
    cell, source = _sheet_cell(args, cell)
    notation = _notation(args)
    texts = {k: getattr(args, k) for k in ("title", "course", "author")
             if getattr(args, k) is not None}
    try:
        texts = {k: v for k, v in notation.with_texts(**texts).__dict__.items() if k in texts}
    except ValueError as e:
        raise UsageError(" ".join(str(e).split())) from None
    try:
        extra = {"source": source} if source is not None else {}
        if notation.name != "goodfellow" or args.notation is not None:
            extra["notation"] = notation
        slow = "deriving, checking and typesetting with LaTeX" if args.pdf is not False \
            else None
        with _Status("symrnn sheet", slow) as status:
            paths = write_sheet(args.out, cell=cell, pdf=args.pdf, notify=status.say, **extra,
                                **texts)
    except OSError as e:
        where = e.filename or args.out
        raise Failure(f"cannot write {where}: {e.strerror or e}") from None
    except (ValueError, NotImplementedError) as e:  # a cell the sheet does not cover
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

    notation = None
    if args.cell_file is not None:
        cell = _cell_from_file(args)
    if (args.key is None) != (args.variant is None):
        raise UsageError("argument --key: --key and --variant go together")
    if args.key is not None:
        cell, notation = _variant_of_key(args)
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
        grader = Grader(cell, notation)
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


FAMILY_OPTIONS = ("activation", "bias", "head", "loss", "gate", "notation")
MAX_KEY = 16 * 2 ** 20   # an answer key of 500 variants is a few MB


def _variant_of_key(args):
    """(cell, grading notation) of variant --variant of the answer key --key."""
    import json

    from .exercise import choice_of
    from .exercise.write import Variant

    given = [f"--{o}" for o in ELMAN_ONLY if getattr(args, o) is not None]
    given += ["--cell"] if args.cell != "elman" else []
    given += ["--cell-file"] if args.cell_file is not None else []
    if given:
        raise UsageError(f"argument --key: cannot be combined with {given[0]}")
    try:
        if os.path.getsize(args.key) > MAX_KEY:
            raise UsageError(f"argument --key: {args.key} is larger than an answer key")
        with open(args.key, encoding="utf-8") as f:
            key = json.load(f)
        entry = next((v for v in key["variants"] if v["number"] == args.variant), None)
        if entry is None:
            raise UsageError(f"argument --variant: the key has no variant {args.variant} "
                             f"(it has 1 to {len(key['variants'])})")
        choice = choice_of(entry["choice"])
    except OSError as e:
        raise UsageError(f"argument --key: cannot read {args.key}: {e.strerror or e}") \
            from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"argument --key: {args.key} is not an answer key of symrnn "
                         f"exercise ({' '.join(str(e).split())})") from None
    variant = Variant(args.variant, len(key["variants"]), key.get("seed"), choice)
    return variant.cell, variant.notation


def run_exercise(args, cell):
    """Write the variants; print the paths written."""
    from .exercise import load_family, make_family, write_exercises
    from .render.notation import NotationError, load_notation

    options = {k: getattr(args, k) for k in FAMILY_OPTIONS}
    try:
        family = load_family(args.family, **options) if args.family is not None \
            else make_family(**options)
    except ValueError as e:
        where = "" if args.family is not None or str(e).startswith("family") \
            else "argument --"
        raise UsageError(f"{where}{' '.join(str(e).split())}") from None
    texts = {k: getattr(args, k) for k in ("title", "course", "author")
             if getattr(args, k) is not None}
    try:
        load_notation().with_texts(**texts)
    except NotationError as e:
        raise UsageError(f"argument --{' '.join(str(e).split())}") from None
    try:
        slow = "deriving, checking and typesetting the variants" if args.pdf is not False \
            else "deriving and checking the variants"
        with _Status("symrnn exercise", slow) as status:
            paths = write_exercises(args.out, args.variants, args.seed, family, pdf=args.pdf,
                                    numerical=args.numerical, notify=status.say,
                                    texts=texts or None)
    except OSError as e:
        where = e.filename or args.out
        raise Failure(f"cannot write {where}: {e.strerror or e}") from None
    except ValueError as e:
        message = " ".join(str(e).split())
        raise UsageError(message if message.startswith("family")
                         else f"argument --{message}") from None
    except RuntimeError as e:  # SheetError: LaTeX failed; or --pdf without TeX
        raise Failure(" ".join(str(e).split()) or type(e).__name__) from None
    for path in paths:
        print(path)
    return 0


COMMANDS = {"derive": run_derive, "check": run_check, "codegen": run_codegen,
            "sheet": run_sheet, "grade": run_grade, "exercise": run_exercise}


def main(argv=None):
    """Run the command line; returns the exit code (never raises, prints no traceback)."""
    prog = "symrnn"
    try:
        args = build_parser().parse_args(argv)
        prog = f"symrnn {args.command}"
        cell = None if args.command == "exercise" else make_cell(args)
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


class _Status:
    """A one-line status on stderr while something slow runs (Numba compiling, LaTeX),
    only when stderr is a terminal: "symrnn check: <what> ... 3 s", redrawn every
    second within the terminal's width and erased at the end. ``say`` prints a
    message of the work above it."""

    def __init__(self, prog, what=None, stream=None):
        self.text = f"{prog}: {what}"
        self.stream = stream or sys.stderr
        self.thread = None
        self.shown = what is not None and _is_terminal(self.stream)

    def __enter__(self):
        import shutil
        import threading
        import time

        if self.shown:
            self.lock, self.stop = threading.Lock(), threading.Event()
            start = time.monotonic()
            try:
                width = os.get_terminal_size(self.stream.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = 0
            width = width or shutil.get_terminal_size().columns  # 0: a pty of no size

            def draw():
                line = f"{self.text} ... {time.monotonic() - start:.0f} s"
                with self.lock:
                    self._write(f"\r{line[:max(width - 1, 1)]}\033[K")

            def redraw():
                while not self.stop.wait(1.0):
                    draw()

            draw()  # at once, then every second
            self.thread = threading.Thread(target=redraw, name="symrnn-status", daemon=True)
            self.thread.start()
        return self

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away
            pass

    def say(self, message):
        if self.thread is None:
            _say(message)
            return
        with self.lock:
            self._write(f"\r\033[K{message}\n")

    def __exit__(self, *exc):
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
            self._write("\r\033[K")
        return False


def _is_terminal(stream):
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
