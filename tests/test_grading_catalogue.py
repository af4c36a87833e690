"""One table of mistakes (``symrnn.mistakes``) for both of its users: the answer checker
and the hints of ``check_bptt``. Changing an entry's sentence changes what both say;
emptying its transformation silences both (the tables are read, not copied)."""
import dataclasses

import pytest

import symrnn
from symrnn.grading import Grader
from symrnn.mistakes import catalogue
from symrnn.testing import check_bptt
from test_testing import buggy

CELL = symrnn.ElmanRNN()
WRONG_ANSWER = r"V^\top (\hat y^{(t)} - y^{(t)}) + W \delta^{(t+1)}"    # W for W^T


def hint(bug):
    with pytest.raises(AssertionError) as caught:
        check_bptt(buggy(bug), CELL, seed=0)
    return [line for line in str(caught.value).splitlines() if "likely mistake" in line]


def feedback():
    return Grader(CELL).grade(WRONG_ANSWER, "dL/dh")


def patched(monkeypatch, key, **changes):
    table = tuple(dataclasses.replace(m, **changes) if m.key == key else m
                  for m in catalogue.CATALOGUE)
    monkeypatch.setattr(catalogue, "CATALOGUE", table)


def test_both_users_say_the_tables_sentence():
    assert hint("transpose") == ["  likely mistake: dL/dh^(t) uses W where the derivation "
                                 "has W^T"]
    r = feedback()
    assert [m.key for m in r.mistakes] == ["transpose"]
    assert "dL/dh^(t) uses W where the derivation has W^T" in r.feedback


def test_a_changed_sentence_changes_both(monkeypatch):
    patched(monkeypatch, "transpose", says="{where} has {new} for {old} (changed)",
            name="changed name", why="")
    assert hint("transpose") == ["  likely mistake: dL/dh^(t) has W for W^T (changed)"]
    assert "Changed name: dL/dh^(t) has W for W^T (changed)" in feedback().feedback


def test_an_emptied_transformation_silences_both(monkeypatch):
    patched(monkeypatch, "transpose", transform=lambda forms: [])
    assert hint("transpose") == []
    assert "transpose" not in [m.key for m in feedback().mistakes]


def test_every_entry_has_a_name_a_sentence_and_a_transformation():
    for m in catalogue.CATALOGUE:
        assert m.key and m.name and m.says and callable(m.transform)
    for key, m in catalogue.RESULTS.items():
        assert key == m.key and m.name and m.says
        assert m.in_answers or m.in_code
        if m.in_code:
            assert callable(m.apply)
