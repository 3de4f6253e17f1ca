#!/usr/bin/env python3
"""Generates docs/api/<function>.md, one reference page per public function, from the `/** name:`
comment blocks of include/mlxport/*.h (the headers are the single source: parameters, ownership,
errors, thread-safety), plus docs/api/index.md listing them by header. tests/py/test_exported_symbols.py
checks that the pages are current and that every exported symbol has one.

usage: tools/gen_api_docs.py [--check]   (--check: exit 1 when a page would change)"""
import glob
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DECL = re.compile(r"/\*\*\s*(\w+):(.*?)\*/\s*MLXPORT_API\s+(.*?\));", re.S)


def pages():
    out, index = {}, []
    for h in sorted(glob.glob(os.path.join(ROOT, "include", "mlxport", "*.h"))):
        text = open(h).read()
        rel = os.path.relpath(h, os.path.join(ROOT, "include"))
        names = []
        for name, body, decl in DECL.findall(text):
            lines = [re.sub(r"^\s*\* ?", "", l).strip() for l in body.strip().splitlines()]
            blocks = [["summary", lines[0]]]  # [kind, text]: summary, param NAME, or a section
            for l in lines[1:]:
                m = re.match(r"(Returns|Ownership|Errors|Thread-safety):\s*(.*)", l)
                p = re.match(r"(\w+(?:, \w+)*):\s+(.*)", l)
                if m:
                    blocks.append([m.group(1), m.group(2)])
                elif p and all(re.search(r"\b%s\b" % x, decl) for x in p.group(1).split(", ")):
                    blocks.append(["param " + p.group(1), p.group(2)])
                else:
                    blocks[-1][1] += " " + l
            md = [f"# {name}", "", f"`#include <mlxport.h>` (declared in `{rel}`)", "", "```c",
                  re.sub(r"\s+", " ", decl).replace("( ", "(") + ";", "```", "", blocks[0][1], ""]
            params = [b for b in blocks if b[0].startswith("param ")]
            if params:
                md += ["**Parameters:**", ""] + [f"- `{b[0][6:]}`: {b[1]}" for b in params] + [""]
            kinds = {b[0] for b in blocks}
            if "Ownership" not in kinds:  # stated on every page: here nothing is handed over
                blocks.append(["Ownership", "what it is given is released: do not use it afterwards."
                               if re.search(r"_(close|free)$", name) else
                               "the arguments stay the caller's; nothing returned needs freeing."])
            if "Errors" not in kinds and not decl.startswith("mlxport_status"):
                blocks.append(["Errors", "none: this function does not fail and leaves mlxport_last_error() as it was."])
            order = ["Returns", "Ownership", "Errors", "Thread-safety"]
            for kind, text in sorted(blocks[1:], key=lambda b: order.index(b[0]) if b[0] in order else -1):
                if not kind.startswith("param "):
                    md += [f"**{kind}:** {text}", ""]
            md += [f"See also: [the API overview](README.md), [all functions](index.md).", ""]
            out[name] = "\n".join(md)
            names.append(name)
        index.append((rel, names))
    idx = ["# libmlxport API reference", "", "One page per public function, generated from the headers by",
           "`tools/gen_api_docs.py`. Conventions: [README.md](README.md).", ""]
    for rel, names in index:
        idx += [f"## `{rel}`", ""] + [f"- [{n}]({n}.md)" for n in names] + [""]
    out["index"] = "\n".join(idx)
    return out


def main():
    check = "--check" in sys.argv
    d = os.path.join(ROOT, "docs", "api")
    os.makedirs(d, exist_ok=True)
    stale = []
    for name, text in pages().items():
        p = os.path.join(d, name + ".md")
        old = open(p).read() if os.path.exists(p) else None
        if old != text:
            stale.append(p)
            if not check:
                open(p, "w").write(text)
    if check and stale:
        print("out of date (run tools/gen_api_docs.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
