"""Command line: ``symrnn sheet``, ``symrnn derive``, ``symrnn check``, ``symrnn codegen``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="symrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sheet = sub.add_parser("sheet", help="write the solution sheet (LaTeX, and PDF when TeX is installed)")
    sheet.add_argument("--out", default="output")
    args = parser.parse_args(argv)
    if args.command == "sheet":
        from .render.sheet import write_sheet
        for path in write_sheet(args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
