#!/usr/bin/env python3
"""Checks that the library's folders depend only downward and that its public surface is closed (docs/design.md §1).

Reads every `#include "kfac/<folder>/..."` (a public header, include/kfac/) and `#include "<folder>/..."` (a private
one, src/) in include/kfac/ and src/, and fails, naming the file and the line, when
- a folder includes one that is not below it in LAYERS, or two folders include each other;
- a public header includes a private one (it would not compile once installed);
- a public header outside the optional runtime component is missing from the umbrella kfac/kfac.h.
ctest runs it (Style.IncludesPointDown).

    python3 scripts/check_includes.py          # exit 0: clean; 1: a violation (printed)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom first: a folder may include itself and the folders before it.
LAYERS = ["util", "linalg", "layers", "curvature", "distributed", "fisher", "global", "nn", "preconditioner",
          "optim", "runtime"]

INCLUDE = re.compile(r'^\s*#\s*include\s+"(kfac/)?([a-z_]+)/([a-z_0-9]+\.h)"', re.M)
OPTIONAL = ["runtime"]  # public folders that are their own component, outside the umbrella


def dependencies():
    """(from folder, to folder) → [(file, line)]."""
    found = {}
    for base in (ROOT / "include" / "kfac", ROOT / "src"):
        for path in sorted(base.rglob("*")):
            if path.suffix not in (".h", ".cpp") or len(path.relative_to(base).parts) < 2:
                continue
            source = path.relative_to(base).parts[0]
            text = path.read_text()
            for m in INCLUDE.finditer(text):
                public, target = m.group(1), m.group(2)
                if not public and not (ROOT / "src" / target / m.group(3)).exists():
                    continue  # not one of ours
                if target != source:
                    line = text.count("\n", 0, m.start()) + 1
                    found.setdefault((source, target), []).append((path.relative_to(ROOT), line))
    return found


def surface_problems():
    """Public headers that include private ones, and public headers the umbrella does not reach."""
    problems = []
    public = ROOT / "include"
    for path in sorted((public / "kfac").rglob("*.h")):
        text = path.read_text()
        for m in INCLUDE.finditer(text):
            if not m.group(1) and (ROOT / "src" / m.group(2) / m.group(3)).exists():
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: a public header includes the private "
                                f"{m.group(2)}/{m.group(3)} (src/), which is not installed")
    umbrella = (public / "kfac" / "kfac.h").read_text()
    for path in sorted((public / "kfac").rglob("*.h")):
        name = path.relative_to(public).as_posix()
        if name == "kfac/kfac.h" or path.parent.name in OPTIONAL:
            continue
        if f'#include "{name}"' not in umbrella:
            problems.append(f"include/kfac/kfac.h: the umbrella does not include {name}")
    return problems


def main():
    found = dependencies()
    problems = []
    for (source, target), where in sorted(found.items()):
        for folder in (source, target):
            if folder not in LAYERS:
                problems.append(f"{where[0][0]}:{where[0][1]}: folder '{folder}' is not in LAYERS "
                                f"(scripts/check_includes.py): place it")
        if source not in LAYERS or target not in LAYERS:
            continue
        if LAYERS.index(target) > LAYERS.index(source):
            for path, line in where:
                problems.append(f"{path}:{line}: {source}/ includes {target}/, which is above it")
    problems += surface_problems()
    both = sorted({tuple(sorted(p)) for p in found if (p[1], p[0]) in found})
    for a, b in both:
        problems.append(f"{a}/ and {b}/ include each other")
    for p in problems:
        print(p)
    print(f"check_includes: {len(found)} folder dependencies, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
