"""The README's "Using it from Python" example, run as it is written."""
import contextlib
import io
import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_the_readme_example_trains():
    text = open(README, encoding="utf-8").read()
    block = re.search(r"<!-- python-example -->\n```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its python-example block"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "README.md", "exec"), {"__name__": "__readme__"})
    printed = out.getvalue()
    print(printed)
    assert printed.startswith("registered 2 blocks: 2 Linear (expand); no fallback parameters")
    losses = [float(v) for v in re.findall(r"loss ([0-9.]+)", printed)]
    assert len(losses) == 5 and losses[-1] < 0.6 < losses[0]
