"""Counts GoogleTest cases in Bazel's test XML files.

usage: count_tests.py LABEL XML_DIR...   (prints "LABEL: N passed, N failed, N skipped")
A test binary that crashed or timed out has no per-case XML of its own; the
XML Bazel writes for it then holds one failing case, which is counted.
"""
import os
import sys
import xml.etree.ElementTree as ET


def count(paths):
    passed = failed = skipped = 0
    failures = []
    for root in paths:
        for dirpath, _, files in os.walk(root, followlinks=True):
            if "test.xml" not in files:
                continue
            path = os.path.join(dirpath, "test.xml")
            try:
                tree = ET.parse(path)
            except ET.ParseError:
                failed += 1
                failures.append(path + " (unreadable XML)")
                continue
            for case in tree.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                    failures.append("%s.%s" % (case.get("classname"), case.get("name")))
                elif case.get("result") == "skipped" or case.find("skipped") is not None:
                    skipped += 1
                else:
                    passed += 1
    return passed, failed, skipped, failures


if __name__ == "__main__":
    label, dirs = sys.argv[1], sys.argv[2:]
    p, f, s, failures = count(dirs)
    for name in failures:
        print("FAILED:", name)
    print("%s: %d passed, %d failed, %d skipped" % (label, p, f, s))
