"""docs/options.md's tables are the option tables as scripts/options_reference.py writes them (the Python keywords and
docstrings come from the same tables), with a section for every block; docs/python.md is the package's reference as
scripts/python_reference.py generates it."""
import os


OPTIONS_MD = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "options.md")


def load(script):
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", script)
    spec = importlib.util.spec_from_file_location(script[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_options_reference_is_current_with_a_section_for_every_block():
    reference = load("options_reference.py")
    assert reference.missing_sections() == []
    with open(OPTIONS_MD, encoding="utf-8") as f:
        assert f.read() == reference.reference(), "docs/options.md is not current: run scripts/options_reference.py"


def test_the_python_reference_is_current_and_every_public_name_has_a_docstring():
    reference = load("python_reference.py")
    assert reference.undocumented() == []
    with open(reference.OUT, encoding="utf-8") as f:
        assert f.read() == reference.reference(), "docs/python.md is not current: run scripts/python_reference.py"
