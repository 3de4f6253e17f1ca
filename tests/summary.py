#!/usr/bin/env python3
"""End-of-run test summary for `make test` (scripts/run-tests.sh): per build folder, the counts of
tests run, passed, failed and skipped, the slowest tests, and every skip with its reason.

Inputs, per build folder: <build>/junit.xml (CTest's --output-junit) and <build>/test-skips/*.tsv,
the skips that tests/c/testlib.c and tests/py/conftest.py record ("test<TAB>function<TAB>reason").
A skip is allowed only when tests/skip-allowlist.txt lists it (test, function glob, the optional
component it needs); any other skip makes this exit 1, so CI fails on it (docs/testing.md).

Usage: tests/summary.py BUILD_DIR [BUILD_DIR...]
"""
import fnmatch
import glob
import os
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def allowlist():
    rows = []
    with open(os.path.join(ROOT, "tests", "skip-allowlist.txt"), encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 3:
                    sys.exit(f"tests/skip-allowlist.txt: malformed line (want test<TAB>function glob<TAB>component): {line!r}")
                rows.append(parts)
    return rows


def allowed(rows, test, fn):
    for t, g, comp in rows:
        if t == test and fnmatch.fnmatchcase(fn, g):
            return comp
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = allowlist()
    bad = 0
    for build in sys.argv[1:]:
        name = os.path.basename(os.path.normpath(build))
        tests = []
        junit = os.path.join(build, "junit.xml")
        if os.path.exists(junit):
            for tc in ET.parse(junit).getroot().iter("testcase"):
                st = tc.get("status", "run")
                if tc.find("failure") is not None or st == "fail":
                    st = "failed"
                elif tc.find("skipped") is not None or st in ("notrun", "disabled"):
                    st = "skipped"
                else:
                    st = "passed"
                tests.append((tc.get("name"), st, float(tc.get("time") or 0)))
        skips = []
        for p in sorted(glob.glob(os.path.join(build, "test-skips", "*.tsv"))):
            with open(p, encoding="utf-8") as f:
                skips += [tuple(l.rstrip("\n").split("\t", 2)) for l in f if l.strip()]
        count = {k: sum(1 for t in tests if t[1] == k) for k in ("passed", "failed", "skipped")}
        print(f"\n== test summary ({name}): {len(tests)} tests: {count['passed']} passed, {count['failed']} failed, "
              f"{count['skipped']} skipped; {len(skips)} skipped test function(s) inside them")
        slow = sorted(tests, key=lambda t: -t[2])[:8]
        if slow:
            print("   slowest: " + ", ".join(f"{n} {s:.0f}s" for n, _, s in slow))
        for n, st, _ in tests:
            if st == "failed":
                print(f"   FAILED {n}")
        whole = {n for n, st, _ in tests if st == "skipped"}
        recorded = {s[0] for s in skips}
        for n in sorted(whole - recorded):
            skips.append((n, "(whole test)", "skipped without a recorded reason"))
        if skips:
            print("   skipped, with reasons:")
        for s in skips:
            test, fn, why = (list(s) + ["", ""])[:3]
            comp = allowed(rows, test, fn)
            tag = f"allowed: needs {comp}" if comp else "NOT ON tests/skip-allowlist.txt"
            if not comp:
                bad += 1
            print(f"   - {test} :: {fn}: {why}  [{tag}]")
    if bad:
        print(f"\n{bad} skip(s) not on tests/skip-allowlist.txt: a test that skips without an allowed reason is a failure")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
