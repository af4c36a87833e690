"""The numerical variants as a Moodle quiz: Moodle XML with one numerical question per
asked gradient entry, built with ``xml.etree`` (the question's HTML too), and checked
for the fields Moodle's import needs (``check_quiz``).

A question shows the network's equations (the engine's, typeset in the variant's
notation), the numbers of the problem as matrices (SymPy's printer; in a row-vector
notation the matrices and vectors as that notation writes them) and asks for one entry
of a gradient; its answer is the entry with a tolerance.
"""
import xml.etree.ElementTree as ET

from sympy import Eq, Float, Integer, Matrix, latex

from ..graph.unroll import T, t
from ..model.nodes import Adjoint, StepVar

__all__ = ["check_quiz", "quiz", "questions"]


def _number(v):
    v = float(v)
    return Integer(int(v)) if v == int(v) else Float(repr(v))


def _matrix(array, row_layout):
    """LaTeX of a numeric array: a matrix, a vector as a column (a row in rows)."""
    rows = [[_number(v) for v in r] for r in (array if array.ndim == 2 else array[:, None])]
    m = Matrix(rows)
    if row_layout:
        m = m.T
    return latex(m, mat_str="pmatrix", mat_delim="")


def _math(tex):
    return rf"\({tex}\)"


def _equations(views):
    rows = [rf"{e.lhs} &= {e.rhs}" for e in views.p2.forward]
    return r"\[\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}\]"


def _values(views, problem):
    """[LaTeX 'symbol = value'] of every number of the problem, in the notation."""
    ts, cell = views.two.ts, views.cell
    row = views.profile.layout == "row"
    out = []
    for p in cell.params:
        out.append(f"{ts(p, inline=True)} = {_matrix(problem.params[p.name], row)}")
    h = cell.states[0]
    out.append(f"{ts(StepVar(h.name, 0, *h.shape), inline=True)} = "
               f"{_matrix(problem.h0, row)}")
    for k in range(len(problem.xs)):
        for symbol, values in ((cell.inputs[0], problem.xs), (cell.targets[0], problem.ys)):
            out.append(f"{ts(StepVar(symbol.name, k + 1, *symbol.shape), inline=True)} = "
                       f"{_matrix(values[k], row)}")
    return out


def _entry(views, name, index):
    """LaTeX of the asked entry, in the notation's layout (a row layout prints the
    transposed matrix: its entry (j, i) is the cell's (i, j)); indices from 1."""
    ts = views.two.ts
    p = views.cell.param(name)
    i, j = index[::-1] if views.profile.layout == "row" else index
    gradient = ts(Adjoint(p), inline=True)
    return rf"\left({gradient}\right)_{{{i + 1},{j + 1}}}", (i + 1, j + 1)


def _html(parts):
    """An HTML fragment of paragraphs; each part a string or a list of strings joined
    by line breaks. Built as elements, serialised by ElementTree."""
    div = ET.Element("div")
    for part in parts:
        p = ET.SubElement(div, "p")
        lines = part if isinstance(part, list) else [part]
        p.text = lines[0]
        for line in lines[1:]:
            br = ET.SubElement(p, "br")
            br.tail = line
    return ET.tostring(div, encoding="unicode")    # XHTML: <br />


def questions(number, views, problem):
    """[dict] of the numerical questions of one variant: name, html, answer, tolerance."""
    ts = views.two.ts
    steps = len(problem.xs)
    loss_total = views.p2.loss_total
    out = []
    for name, index, value, check, tolerance in problem.entries:
        entry, shown = _entry(views, name, index)
        html = _html([
            f"A recurrent network computes at every step {_math(ts(t, inline=True))}:",
            _equations(views),
            f"The loss of the sequence is {_math(f'{loss_total.lhs} = {loss_total.rhs}')}, "
            f"here with {_math(ts(Eq(T, steps, evaluate=False), inline=True))} and these "
            "numbers:",
            [_math(v) for v in _values(views, problem)],
            f"Compute the entry {_math(entry)} of the gradient (row {shown[0]}, column "
            f"{shown[1]}), to at least three significant digits.",
        ])
        out.append({"name": f"Variant {number}: dL/d{name} entry {shown}",
                    "html": html, "answer": value, "tolerance": tolerance,
                    "feedback": _html([f"{_math(entry)} = {value:.6g}"])})
    return out


def _text(parent, tag, text, **attributes):
    element = ET.SubElement(parent, tag, attributes)
    ET.SubElement(element, "text").text = text
    return element


def quiz(category, items):
    """The Moodle XML (bytes, UTF-8) of ``items`` (``questions``' dicts) in ``category``."""
    root = ET.Element("quiz")
    head = ET.SubElement(root, "question", type="category")
    _text(head, "category", f"$course$/top/{category}")
    for item in items:
        q = ET.SubElement(root, "question", type="numerical")
        _text(q, "name", item["name"])
        _text(q, "questiontext", item["html"], format="html")
        _text(q, "generalfeedback", item["feedback"], format="html")
        ET.SubElement(q, "defaultgrade").text = "1"
        ET.SubElement(q, "penalty").text = "0.3333333"
        ET.SubElement(q, "hidden").text = "0"
        answer = ET.SubElement(q, "answer", fraction="100", format="moodle_auto_format")
        ET.SubElement(answer, "text").text = f"{item['answer']:.6g}"
        _text(answer, "feedback", "", format="html")
        ET.SubElement(answer, "tolerance").text = f"{item['tolerance']:g}"
        ET.SubElement(q, "unitgradingtype").text = "0"
        ET.SubElement(q, "unitpenalty").text = "0.1000000"
        ET.SubElement(q, "showunits").text = "3"
        ET.SubElement(q, "unitsleft").text = "0"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def check_quiz(data):
    """The numerical questions of Moodle XML ``data`` as [(name, answer, tolerance)];
    ValueError naming what Moodle's import would miss."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ValueError(f"quiz: not well-formed XML ({e})") from None
    if root.tag != "quiz":
        raise ValueError(f"quiz: the root element is <{root.tag}>, not <quiz>")
    out = []
    for k, q in enumerate(root.findall("question")):
        kind = q.get("type")
        if kind == "category":
            if not (q.findtext("category/text") or "").strip():
                raise ValueError(f"quiz: question {k + 1}: a category without a name")
            continue
        if kind != "numerical":
            raise ValueError(f"quiz: question {k + 1}: type {kind!r}, not 'numerical'")
        name = (q.findtext("name/text") or "").strip()
        text = q.find("questiontext")
        if not name or text is None or text.get("format") != "html" \
                or not (text.findtext("text") or "").strip():
            raise ValueError(f"quiz: question {k + 1}: a name and an HTML question text "
                             "are needed")
        answers = [a for a in q.findall("answer") if a.get("fraction") == "100"]
        if not answers:
            raise ValueError(f"quiz: {name}: no answer with fraction 100")
        try:
            value = float(answers[0].findtext("text"))
            tolerance = float(answers[0].findtext("tolerance"))
        except (TypeError, ValueError):
            raise ValueError(f"quiz: {name}: the answer and its tolerance must be numbers") \
                from None
        if not tolerance >= 0:
            raise ValueError(f"quiz: {name}: a negative tolerance")
        out.append((name, value, tolerance))
    if not out:
        raise ValueError("quiz: no numerical question")
    return out
