#!/usr/bin/env python3
"""Writes the option tables of docs/options.md from the code's option tables (through kronfac.option_specs).

The page's prose is kept; each table under a "## `block`" heading is rewritten, one row per field of that block, in
the table's order: name, type, default, range, doc. python/tests/test_docs.py fails when the page is not current.

    PYTHONPATH=build/python /usr/bin/python3 scripts/options_reference.py    # rewrites docs/options.md
"""
import os
import re

import kronfac

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "options.md")
TABLES = ["preconditioner", "optimizer", "qmodel", "muon", "shampoo", "soap"]
HEADER = "| name | type | default | range | doc |\n|---|---|---|---|---|\n"
# Ranges the tables do not spell out: the method and the global stage are any registered name.
RANGES = {"method": "a registered method: `kfac`, `ekfac`, `tkfac`, `tekfac`, or one added by `register_method`",
          "global_stage": "a registered stage: `none`, `two-level`, `block-tridiagonal`, or one added by "
                          "`register_global_stage`"}


def cell(text):
    return text.replace("|", "\\|")


def row(spec):
    kind = spec["type"] + (", optional" if spec["nullable"] else "")
    if spec["name"] in RANGES:
        bounds = RANGES[spec["name"]]
    elif spec["range"]:
        bounds = spec["range"]
    elif spec["choices"]:
        bounds = "one of " + ", ".join(spec["choices"])
    elif spec["type"] == "name":
        bounds = "any text"
    else:
        bounds = ""
    cells = [f"`{spec['name']}`", kind, f"`{cell(spec['default_text'])}`", cell(bounds), cell(spec["doc"])]
    return ("| " + " | ".join(cells) + " |\n").replace("|  |", "| |")


def blocks():
    """Block name ("" for the root) → its rows, in table order."""
    out = {}
    for table in TABLES:
        for spec in kronfac.option_specs(table):
            out.setdefault(spec["block"], []).append(row(spec))
    return out


def sections(text):
    """The block names the page has a section for ("" for "## Root")."""
    return {h.split("`")[1] if "`" in h else "" for h in re.findall(r"(?m)^## (?:Root|`[a-z_]+`).*$", text)}


def missing_sections():
    """Blocks of the code without a section on the page (a new block needs its heading and prose first)."""
    with open(OUT, encoding="utf-8") as f:
        have = sections(f.read())
    return sorted(b or "(root)" for b in blocks() if b not in have)


def reference(text=None):
    """docs/options.md with every block's table written from the code."""
    if text is None:
        with open(OUT, encoding="utf-8") as f:
            text = f.read()
    rows = blocks()
    parts = re.split(r"(?m)^(## .*\n)", text)
    out = [parts[0]]
    for heading, body in zip(parts[1::2], parts[2::2]):
        name = heading.split("`")[1] if "`" in heading else ("" if heading.startswith("## Root") else None)
        if name is not None and name in rows:
            table = re.search(r"(?m)^\| name \| type \|.*\n\|---.*\n(?:\|.*\n)*", body)
            if table:
                body = body[:table.start()] + HEADER + "".join(rows[name]) + body[table.end():]
        out += [heading, body]
    return "".join(out)


if __name__ == "__main__":
    new = reference()
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(new)
