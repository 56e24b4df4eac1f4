#!/usr/bin/env python3
"""The longest functions of a Rust tree, tests left out: `python3 scripts/fn-lengths.py src [N]`.

Counts lines from a `fn` line to the closing brace at the same indentation (rustfmt's
layout), skipping everything after a `#[cfg(test)]` in a file.
"""
import os
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)")


def lengths(root):
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                if re.match(r"\s*#\[cfg\(test\)\]", line):
                    break
                m = FN.match(line)
                if not m:
                    continue
                end = next((j for j in range(i + 1, len(lines)) if lines[j] == m.group(1) + "}"), None)
                if end is not None:
                    yield end - i + 1, path, m.group(5)


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    most = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    for n, path, name in sorted(lengths(root), reverse=True)[:most]:
        print(f"{n:4} {path} {name}")
