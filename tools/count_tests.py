"""Counts GoogleTest cases in Bazel's test XML files.

usage: count_tests.py LABEL XML_DIR...   (prints "LABEL: N passed, N failed, N skipped")
       count_tests.py --copy-from-bep BEP_JSON DIR
         copies the test.xml of every test result in Bazel's build event
         file (--build_event_json_file; the last attempt of each run and
         shard) under DIR, one folder per result, and says how many.
A test binary that crashed or timed out has no per-case XML of its own; the
XML Bazel writes for it then holds one failing case, which is counted.
"""
import json
import os
import shutil
import sys
import urllib.parse
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


def copy_from_bep(bep_path, out_dir):
    """Copies each reported result's test.xml; returns how many."""
    latest = {}  # (label, run, shard) -> (attempt, xml path)
    with open(bep_path) as bep:
        for line in bep:
            event = json.loads(line)
            result_id = event.get("id", {}).get("testResult")
            if result_id is None:
                continue
            key = (result_id.get("label"), result_id.get("run", 1),
                   result_id.get("shard", 1))
            attempt = result_id.get("attempt", 1)
            for output in event.get("testResult", {}).get("testActionOutput", []):
                if output.get("name") != "test.xml":
                    continue
                uri = output.get("uri", "")
                if not uri.startswith("file://"):
                    continue
                path = urllib.parse.unquote(uri[len("file://"):])
                if key not in latest or latest[key][0] <= attempt:
                    latest[key] = (attempt, path)
    copied = 0
    for (label, run, shard), (_, path) in sorted(latest.items()):
        name = "%s_run%d_shard%d" % (label.strip("/").replace("/", "_").replace(":", "_"), run, shard)
        if os.path.exists(path):
            os.makedirs(os.path.join(out_dir, name), exist_ok=True)
            shutil.copy(path, os.path.join(out_dir, name, "test.xml"))
            copied += 1
    return copied


if __name__ == "__main__":
    if sys.argv[1] == "--copy-from-bep":
        n = copy_from_bep(sys.argv[2], sys.argv[3])
        print("%d test results reported by Bazel" % n)
        sys.exit(0)
    label, dirs = sys.argv[1], sys.argv[2:]
    p, f, s, failures = count(dirs)
    for name in failures:
        print("FAILED:", name)
    print("%s: %d passed, %d failed, %d skipped" % (label, p, f, s))
