"""docs/options.md copies the option tables: every option of every table has its row there, with the table's type,
default and doc (the Python keywords and docstrings come from the same tables); docs/python.md is the package's
reference as scripts/python_reference.py generates it."""
import os

import pytest

import kronfac

OPTIONS_MD = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "options.md")


def rows():
    out = {}
    section = None
    for line in open(OPTIONS_MD, encoding="utf-8"):
        if line.startswith("## "):
            section = line
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").replace("\\|", "\u2016").split("|")]
            out[(section.split("`")[1] if "`" in section else "", cells[0].strip("`"))] = cells
    return out


@pytest.mark.parametrize("table", ["preconditioner", "optimizer", "qmodel", "muon", "shampoo", "soap"])
def test_every_option_has_its_row(table):
    documented = rows()
    for spec in kronfac.option_specs(table):
        key = (spec["block"], spec["name"])
        assert key in documented, f"docs/options.md has no row for {spec['name']} in block '{spec['block']}'"
        _, type_, default, _, doc = documented[key]
        assert type_.split(",")[0] == spec["type"], spec["name"]
        assert default.split("`")[1] == spec["default_text"], spec["name"]
        assert doc.replace("\u2016", "|") == spec["doc"], spec["name"]


def test_the_python_reference_is_current_and_every_public_name_has_a_docstring():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "python_reference.py")
    spec = importlib.util.spec_from_file_location("python_reference", path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    assert reference.undocumented() == []
    with open(reference.OUT, encoding="utf-8") as f:
        assert f.read() == reference.reference(), "docs/python.md is not current: run scripts/python_reference.py"
