#!/usr/bin/env python3
"""Checks that the library's folders depend only downward (docs/design.md §1).

Reads every `#include "kfac/<folder>/..."` in include/kfac/ and src/, and fails, naming the file and the line, when
a folder includes one that is not below it in LAYERS, or when two folders include each other. ctest runs it
(Style.IncludesPointDown).

    python3 scripts/check_includes.py          # exit 0: clean; 1: a violation (printed)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom first: a folder may include itself and the folders before it.
LAYERS = ["util", "linalg", "layers", "curvature", "distributed", "fisher", "global", "nn", "preconditioner",
          "optim", "runtime"]

INCLUDE = re.compile(r'^\s*#\s*include\s+"kfac/([a-z_]+)/', re.M)


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
                target = m.group(1)
                if target != source:
                    line = text.count("\n", 0, m.start()) + 1
                    found.setdefault((source, target), []).append((path.relative_to(ROOT), line))
    return found


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
    both = sorted({tuple(sorted(p)) for p in found if (p[1], p[0]) in found})
    for a, b in both:
        problems.append(f"{a}/ and {b}/ include each other")
    for p in problems:
        print(p)
    print(f"check_includes: {len(found)} folder dependencies, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
