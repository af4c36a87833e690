"""symrnn exercise: variants of exercise sheet 08 for a course.

The same seed gives the same files, different seeds different cells; the solution
sheets of two variants compile with no overfull box (their logs, as the sheet tests
read them); the Moodle XML has what Moodle's import needs (read here with ElementTree,
not with the module's own check); the answer key's formulas are graded right by
symrnn.grading and its numbers agree with the hand-written BPTT of symrnn.checking;
bad options exit 2 with one line, and a failure leaves no file behind."""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import symrnn
import symrnn.exercise as ex
from documents import needs_tex, overfull, pages, pdf_text
from symrnn.checking.references import elman_bptt
from symrnn.grading import grade
from symrnn.render.tex import compile_tex, tex_engine

SEED = 17
# the first two variants: one in each notation, one with a reset and one with an update
# gate; every other option drawn from the defaults
FAMILY = dict(notation=["goodfellow", "d2l"])


def run(*argv, cwd=None):
    done = subprocess.run([sys.executable, "-m", "symrnn", "exercise", *argv],
                          capture_output=True, text=True, cwd=cwd, timeout=600)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def tex_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("exercise")
    family = ex.make_family(**FAMILY)
    for name in ("a", "b"):
        ex.write_exercises(root / name, 2, SEED, family, pdf=False)
    ex.write_exercises(root / "other", 2, SEED + 1, family, pdf=False)
    return root


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    if tex_engine() is None:
        pytest.skip("no TeX engine")
    out = tmp_path_factory.mktemp("compiled") / "variants"
    ex.write_exercises(out, 2, SEED, ex.make_family(**FAMILY), pdf=True, numerical=False,
                       logs=True)
    return out


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_the_same_seed_gives_the_same_files(tex_only):
    a, b = files(tex_only / "a"), files(tex_only / "b")
    assert set(a) == {Path(f"{kind}-0{k}.tex") for kind in ("exercise", "solution")
                      for k in (1, 2)} | {Path("answer-key.json"), Path("moodle.xml")}
    assert a == b
    assert a != files(tex_only / "other")


def test_different_seeds_give_different_cells():
    family = ex.make_family()
    cells = {seed: [v.choice for v in ex.draw(5, seed, family)] for seed in (1, 2, 3)}
    assert len({tuple(c) for c in cells.values()}) == 3
    assert all(len(set(c)) == 5 for c in cells.values())   # five students, five cells
    assert [v.choice for v in ex.draw(5, 1, family)] == cells[1]


def test_a_family_of_few_cells_repeats_them_in_turn():
    family = ex.make_family(activation="relu", bias="no", head="linear",
                            loss="squared-error", gate=["none", "update"])
    assert len(family.cells()) == 2
    choices = [v.choice for v in ex.draw(5, 0, family)]
    assert len(set(choices[:2])) == 2 and choices[2:4] == choices[:2]


@pytest.mark.slow
def test_every_formula_of_the_sheets_comes_from_the_engine(tex_only):
    """The exercise sheet states the variant's equations as the derivation sheet
    prints them; the exercise's network (tanh, softmax, no bias, no gate) has the
    forward equations of ElmanRNN."""
    key = json.loads((tex_only / "a" / "answer-key.json").read_text())
    for entry in key["variants"]:
        choice = ex.choice_of(entry["choice"])
        views = ex.write.Variant(entry["number"], 2, SEED, choice).views
        text = (tex_only / "a" / entry["files"]["exercise"]).read_text()
        for e in views.p2.forward:
            assert e.lhs in text and e.rhs in text
    exercise = ex.Choice().cell()
    assert exercise.equations == symrnn.ElmanRNN().equations


@pytest.mark.slow
def test_the_answer_key_is_graded_right(tex_only):
    key = json.loads((tex_only / "a" / "answer-key.json").read_text())
    for entry in key["variants"]:
        variant = ex.write.Variant(entry["number"], 2, SEED, ex.choice_of(entry["choice"]))
        assert set(entry["answers"]) == {p.name for p in variant.cell.params}
        for name, answer in entry["answers"].items():
            for form in ("latex", "text"):
                r = grade(answer[form], variant.cell, name, notation=variant.notation)
                assert r.correct and r.exact, (entry["number"], name, form, r.feedback)
        # and another gradient's formula is not
        other = grade(entry["answers"]["U"]["latex"], variant.cell, "W",
                      notation=variant.notation)
        assert not other.correct


@pytest.mark.slow
def test_the_numbers_agree_with_the_hand_written_bptt(tex_only):
    """The numerical variant's entries (generated code, cross-checked by the module with
    finite differences) equal those of symrnn.checking's hand-written Elman BPTT, for
    the variants it covers (no gate)."""
    family = ex.make_family(gate="none", head=["softmax", "linear"])
    covered = 0
    for variant in ex.draw(4, SEED, family):
        problem = ex.numbers.numeric_problem(variant.choice, (SEED, variant.number))
        c = variant.choice
        output = "softmax_ce" if c.head == "softmax" and c.loss == "cross-entropy" else \
            "mse" if c.head == "linear" else None
        if output is None:
            continue
        loss, grads = elman_bptt(problem.params, problem.xs, problem.ys, problem.h0,
                                 c.activation, output)
        assert loss == pytest.approx(problem.loss, rel=1e-12)
        for name, index, value, check, tolerance in problem.entries:
            assert value == pytest.approx(grads[name][index], rel=1e-9, abs=1e-12)
            assert tolerance > 0 and abs(value) >= 10 * tolerance / 2
        covered += 1
    assert covered >= 2


@pytest.mark.slow
def test_the_numbers_are_simple_and_well_conditioned(tex_only):
    key = json.loads((tex_only / "a" / "answer-key.json").read_text())
    for entry in key["variants"]:
        numbers = entry["numerical"]
        for array in list(numbers["params"].values()) + [numbers["x"], numbers["y"]]:
            values = np.asarray(array, dtype=float).ravel()
            assert np.allclose(values * 10, np.round(values * 10))     # one decimal
        assert len(numbers["entries"]) >= 3
        for e in numbers["entries"]:
            assert 0.05 <= abs(e["value"]) <= 50 and e["tolerance"] <= 0.011 * abs(e["value"]) \
                + 5e-4


@pytest.mark.slow
def test_the_moodle_quiz_has_what_moodle_needs(tex_only):
    data = (tex_only / "a" / "moodle.xml").read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    assert root.tag == "quiz"
    questions = root.findall("question")
    assert questions[0].get("type") == "category"
    assert questions[0].findtext("category/text").startswith("$course$/top/")
    numerical = [q for q in questions if q.get("type") == "numerical"]
    key = json.loads((tex_only / "a" / "answer-key.json").read_text())
    asked = [e for v in key["variants"] for e in v["numerical"]["entries"]]
    assert len(numerical) == len(asked) == len(questions) - 1
    for q, e in zip(numerical, asked):
        assert q.findtext("name/text").strip()
        text = q.find("questiontext")
        assert text.get("format") == "html"
        html = ET.fromstring(text.findtext("text"))        # the HTML is well-formed too
        assert html.tag == "div" and r"\(" in text.findtext("text")
        answers = q.findall("answer")
        assert [a.get("fraction") for a in answers] == ["100"]
        assert float(answers[0].findtext("text")) == pytest.approx(e["value"], rel=1e-5)
        assert float(answers[0].findtext("tolerance")) == e["tolerance"]
    assert ex.moodle.check_quiz(data)


def test_the_quiz_check_refuses_what_moodle_would_miss():
    good = ex.moodle.quiz("c", [{"name": "q", "html": "<p>x</p>", "answer": 1.5,
                                 "tolerance": 0.01, "feedback": ""}])
    assert ex.moodle.check_quiz(good) == [("q", 1.5, 0.01)]
    for broken, words in [(good.replace(b'fraction="100"', b'fraction="50"'), "fraction 100"),
                          (good.replace(b'format="html"', b'format="moodle"', 1), "HTML"),
                          (good.replace(b"<tolerance>0.01", b"<tolerance>x"), "numbers"),
                          (good[:-20], "well-formed")]:
        with pytest.raises(ValueError, match=words):
            ex.moodle.check_quiz(broken)


@needs_tex
@pytest.mark.tex
def test_the_solution_sheets_pass_the_sheet_checks(compiled):
    key = json.loads((compiled / "answer-key.json").read_text())
    assert {v["choice"]["notation"] for v in key["variants"]} == {"goodfellow", "d2l"}
    for entry in key["variants"]:
        for kind in ("exercise", "solution"):
            log = (compiled / "logs" / entry["files"][kind].replace(".tex", ".log")).read_text(
                errors="replace")
            hboxes, vboxes = overfull(log)
            assert hboxes == [] and vboxes == 0, (entry["files"][kind], hboxes)
            assert "undefined" not in log.lower() or "Reference" not in log
        assert pages(log) <= 7
        text = pdf_text(compiled / entry["files"]["solution pdf"])
        for heading in ("Problem 1", "Problem 2", "Problem 3", "Numerical check",
                        f"Variant {entry['number']}"):
            assert heading in text


@needs_tex
@pytest.mark.tex
def test_the_same_tex_gives_the_same_pdf(compiled, tmp_path):
    """PDF bytes: SOURCE_DATE_EPOCH (set by compile_tex) and an empty trailer /ID."""
    made = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "exercise-01.tex").write_bytes((compiled / "exercise-01.tex").read_bytes())
        made.append(compile_tex(folder / "exercise-01.tex").read_bytes())
    assert made[0] == made[1] == (compiled / "exercise-01.pdf").read_bytes()
    assert b"/CreationDate" not in made[0] and b"/ID" not in made[0]


@pytest.mark.slow
def test_bad_options_exit_2_with_one_line(tmp_path):
    out = tmp_path / "out"
    for argv, words in [
            (["--variants", "0", "--seed", "1"], "--variants"),
            (["--variants", "2", "--seed", "x"], "--seed"),
            (["--variants", "2", "--seed", "1", "--activation", "tanh,cosh"], "--activation"),
            (["--variants", "2", "--seed", "1", "--head", "linear", "--loss", "ce"],
             "cross-entropy needs"),
            (["--variants", "2", "--seed", "1", "--notation", "nope"], "--notation"),
            (["--variants", "2", "--seed", "1", "--family", str(tmp_path / "none.toml")],
             "cannot read"),
            (["--variants", "2", "--seed", "1", "--title", "a\x01b"], "--title")]:
        code, stdout, stderr = run(*argv, "--out", str(out), "--tex-only")
        assert code == 2 and stdout == "", (argv, stderr)
        assert len(stderr.splitlines()) == 1 and words in stderr, (argv, stderr)
        assert "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_family_file_and_the_command_line(tmp_path):
    family = tmp_path / "family.toml"
    family.write_text('activation = "relu"\ngate = ["update"]\nbias = true\n'
                      'notation = "cs231n"\n')
    code, stdout, stderr = run("--variants", "2", "--seed", "3", "--out", "v", "--family",
                               str(family), "--tex-only", "--no-numerical", cwd=tmp_path)
    assert code == 0 and stderr == "", stderr
    assert stdout.split() == ["v/answer-key.json", "v/exercise-01.tex", "v/exercise-02.tex",
                              "v/solution-01.tex", "v/solution-02.tex"]
    key = json.loads((tmp_path / "v" / "answer-key.json").read_text())
    assert all(v["choice"]["activation"] == "relu" and v["choice"]["gate"] == "update"
               for v in key["variants"])
    answer = key["variants"][1]["answers"]["W"]["latex"]
    done = subprocess.run([sys.executable, "-m", "symrnn", "grade", "--key", "v/answer-key.json",
                           "--variant", "2", "--gradient", "W", "--answer", answer],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("Correct"), done.stderr


def test_a_failure_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []

    def failing(template, context):
        calls.append(template)
        if len(calls) == 3:                 # the second variant's exercise sheet
            raise RuntimeError("stop")
        return "text"

    monkeypatch.setattr(ex.write.sheets, "render", failing)
    with pytest.raises(RuntimeError, match="stop"):
        ex.write_exercises(out, 2, 0, ex.make_family(gate="none"), pdf=False)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []       # no temporary folder left
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    calls.clear()
    with pytest.raises(RuntimeError, match="stop"):
        ex.write_exercises(out, 2, 0, ex.make_family(gate="none"), pdf=False)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
