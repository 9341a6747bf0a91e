#!/usr/bin/env python3
"""Fails if an `exclude_re` pattern of .cargo/mutants.toml matches no mutant any more.

Most exclusions name a line and column (an argued-equivalent mutant is one operator at one place);
when code moves, the pattern silently stops excluding — and the mutant it argued for comes back
to fail `scripts/mutants-diff.sh` at random, or the argument goes stale unseen. This lists every
mutant (`cargo mutants --list`, no build) with the exclusions set aside and checks each pattern.
"""
import os
import pathlib
import re
import subprocess
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
config = root / ".cargo" / "mutants.toml"
patterns = tomllib.loads(config.read_text())["exclude_re"]
aside = config.with_suffix(".toml.aside")
os.rename(config, aside)
try:
    listed = subprocess.run(
        ["cargo", "mutants", "--workspace", "--list"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.splitlines()
finally:
    os.rename(aside, config)
stale = [p for p in patterns if not any(re.search(p, m) for m in listed)]
for p in stale:
    print(f"check-mutants-exclusions: matches no mutant: {p}", file=sys.stderr)
print(f"check-mutants-exclusions: {len(patterns) - len(stale)} of {len(patterns)} patterns match a mutant")
sys.exit(1 if stale else 0)
