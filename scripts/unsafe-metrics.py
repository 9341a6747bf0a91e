#!/usr/bin/env python3
"""The four numbers issue #14 asks for, counted the same way every time.

1. `unsafe` blocks in the driver outside `src/kernel` and `src/sys` (goal 0);
2. `unsafe` blocks in `src/kernel`;
3. functions outside those two modules with a raw-pointer parameter (goal 0);
4. kshost functions that are *safe to call* (not `unsafe fn`) yet take a raw-pointer parameter and
   contain an `unsafe` block - a safe signature over a pointer it cannot check (goal 0). Broad: it
   also counts a function whose `unsafe` block has nothing to do with the pointer (a `zeroed()`);
5. of those, the ones that name a raw-pointer parameter inside an `unsafe` block - the issue's
   "safe functions that dereference a raw pointer" (goal 0). A pointer copied into another local
   first would escape this check; `--list` shows both lists to look at.

A lexer-level count (comments and strings stripped, braces matched), not a compiler pass: good
enough to watch a number go down, and `--list` shows every function it counted.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def strip(src: str) -> str:
    """Blank out comments, strings and char literals, keeping offsets."""
    out = list(src)
    i, n = 0, len(src)
    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:i + 10]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'r(#*)"', src[i:])
            end = src.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            blank(i, end)
            i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", src[i:i + 4]) or (c == "'" and src.startswith("'\\", i)):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'", src[i:])
            if m:
                blank(i, i + len(m.group(0)))
                i += len(m.group(0))
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def cfg_test_spans(code: str):
    """Spans of `#[cfg(test)] mod ... { }` blocks: test code is not the driver."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", code):
        spans.append((m.start(), match_brace(code, m.end() - 1)))
    return spans


def match_brace(code: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(code)


FN = re.compile(r"\bfn\s+(\w+)\s*(<[^{;]*?>)?\s*\(")


def functions(code: str):
    """(name, is_unsafe_fn, params, body_start, body_end, offset) for each fn with a body."""
    for m in FN.finditer(code):
        # The parameter list: match parentheses.
        depth, k = 0, m.end() - 1
        while k < len(code):
            if code[k] == "(":
                depth += 1
            elif code[k] == ")":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        params = code[m.end():k]
        rest = k + 1
        brace = code.find("{", rest)
        semi = code.find(";", rest)
        if brace < 0 or (0 <= semi < brace):
            continue  # a declaration (trait item, extern block)
        head = code[max(0, m.start() - 60):m.start()]
        line_head = head.split(";")[-1].split("}")[-1]
        is_unsafe = re.search(r"\bunsafe\b", line_head) is not None
        yield m.group(1), is_unsafe, params, brace, match_brace(code, brace), m.start()


def in_spans(pos, spans):
    return any(a <= pos < b for a, b in spans)


def rs_files(base: pathlib.Path):
    return sorted(p for p in base.rglob("*.rs"))


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


RAW = re.compile(r"\*\s*(mut|const)\b")
RAW_PARAM = re.compile(r"\b(\w+)\s*:\s*\*\s*(?:mut|const)\b")
UNSAFE_BLOCK = re.compile(r"\bunsafe\s*\{")


def main():
    listing = "--list" in sys.argv
    src = ROOT / "src"
    outside_blocks = kernel_blocks = 0
    raw_fns = []
    per_file = []
    for p in rs_files(src):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith("src/sys/"):
            continue
        code = strip(p.read_text())
        tests = cfg_test_spans(code)
        blocks = sum(1 for m in UNSAFE_BLOCK.finditer(code) if not in_spans(m.start(), tests))
        if rel.startswith("src/kernel/"):
            kernel_blocks += blocks
            continue
        outside_blocks += blocks
        if blocks:
            per_file.append((rel, blocks))
        for name, _u, params, _a, _b, off in functions(code):
            if in_spans(off, tests):
                continue
            if RAW.search(params):
                raw_fns.append(f"{rel}:{line_of(code, off)} {name}")
    safe_deref = []
    safe_param_deref = []
    for p in rs_files(ROOT / "crates/kshost/src"):
        rel = p.relative_to(ROOT).as_posix()
        code = strip(p.read_text())
        tests = cfg_test_spans(code)
        for name, is_unsafe, params, a, b, off in functions(code):
            if is_unsafe or in_spans(off, tests):
                continue
            if RAW.search(params) and UNSAFE_BLOCK.search(code[a:b]):
                safe_deref.append(f"{rel}:{line_of(code, off)} {name}")
                names = [m.group(1) for m in RAW_PARAM.finditer(params)]
                for blk in UNSAFE_BLOCK.finditer(code, a, b):
                    inner = code[blk.end() - 1:match_brace(code, blk.end() - 1)]
                    if any(re.search(rf"\b{re.escape(n)}\b", inner) for n in names):
                        safe_param_deref.append(f"{rel}:{line_of(code, off)} {name}")
                        break
    print(f"driver unsafe blocks outside src/kernel and src/sys: {outside_blocks}")
    for rel, n in per_file:
        print(f"    {n:4} {rel}")
    print(f"driver unsafe blocks in src/kernel: {kernel_blocks}")
    print(f"driver fns outside src/kernel and src/sys with a raw-pointer parameter: {len(raw_fns)}")
    print(f"kshost safe fns with a raw-pointer parameter and an unsafe block: {len(safe_deref)}")
    print(f"kshost safe fns that use a raw-pointer parameter inside an unsafe block: {len(safe_param_deref)}")
    if listing:
        print("\n# raw-pointer fns in the driver's logic")
        print("\n".join(raw_fns))
        print("\n# kshost safe fns over raw pointers")
        print("\n".join(safe_deref))
        print("\n# of those, using the pointer parameter inside an unsafe block")
        print("\n".join(safe_param_deref))


if __name__ == "__main__":
    main()
