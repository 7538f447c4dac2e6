"""Writes compile_commands.json for Annex's own C/C++ files from Bazel.

usage: python3 tools/compile_commands.py [BAZEL_FLAGS...]

BAZEL_FLAGS default to `-c opt`: the optimized build users build and the
suites test, so clang-tidy checks the code with those flags, and in
tools/test.sh the suite that follows reuses Bazel's analysis and the
generated headers instead of redoing them for a second configuration.

Asks `bazel aquery` for every CppCompile action of //... and writes one
entry per source file of ours (not external/) at the workspace root. Then
builds the headers those actions read that Bazel generates (the
`embed_file` headers of our Python sources, annex_build_info.h; output
group compilation_prerequisites_INTERNAL_: headers only, nothing compiled,
a few seconds), so that a fresh clone's files parse. Paths into Bazel's outputs and external
repositories point into the execution root, so clang-tidy sees exactly the
flags and headers Bazel compiles with. GCC-only flags
that clang does not know are dropped. Used by tools/check_tidy.sh.
"""
import json
import os
import subprocess
import sys

# Flags Bazel's GCC toolchain passes that clang-tidy's clang rejects or
# warns about.
_GCC_ONLY = {
    "-fno-canonical-system-headers",
    "-Wno-free-nonheap-object",
    "-Wunused-but-set-parameter",
    "-fno-sanitize-recover=undefined",
}


def _Rewrite(arg, execroot, output_base):
    """Makes an argument work from the source tree: our files are read where
    they are, Bazel's outputs in the execroot, external repositories where
    Bazel fetched them (the execroot links only those of the last build)."""
    for prefix, base in (("external/", output_base), ("bazel-out/", execroot)):
        for flag in ("", "-I", "-iquote", "-isystem", "-MF", "-o"):
            if arg.startswith(flag + prefix):
                return flag + os.path.join(base, arg[len(flag):])
    return arg


def main(flags):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    execroot = subprocess.check_output(
        ["bazel", "info", *flags, "execution_root"], text=True).strip()
    output_base = subprocess.check_output(
        ["bazel", "info", *flags, "output_base"], text=True).strip()
    out = subprocess.check_output(
        ["bazel", "aquery", *flags, "--output=jsonproto",
         'mnemonic("CppCompile", //...)'], text=True)
    actions = json.loads(out).get("actions", [])
    entries = {}
    for action in actions:
        args = action["arguments"]
        if "-c" not in args:
            continue
        src = args[args.index("-c") + 1]
        if src.startswith("external/") or src.startswith("bazel-out/"):
            continue
        args = [_Rewrite(a, execroot, output_base) for a in args
                if a not in _GCC_ONLY]
        # One entry per file: the first configuration Bazel listed.
        entries.setdefault(src, {
            "directory": root,
            "file": os.path.join(root, src),
            "arguments": args,
        })
    with open("compile_commands.json", "w") as f:
        json.dump(sorted(entries.values(), key=lambda e: e["file"]), f,
                  indent=1)
    subprocess.check_call(
        ["bazel", "build", *flags, "--show_result=0",
         "--output_groups=compilation_prerequisites_INTERNAL_", "//..."])
    print("compile_commands.json: %d files" % len(entries), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:] or ["-c", "opt"])
