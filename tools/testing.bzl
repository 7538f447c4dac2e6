"""annex_test: a GoogleTest binary of Annex's tests, in one place.

Every test gets Annex's compiler flags (tools/copts.bzl) and, unless
`srcs` is given, the source NAME.cc. `main` picks what provides main():

- "gtest" (default): GoogleTest's own main (@system//:gtest_main).
- "python": tests/testing:python_main, which owns one embedded CPython
  interpreter (the target) for the whole binary, with CPython and
  GoogleTest as dependencies.
- "none": the sources bring their own main().
"""

load("//tools:copts.bzl", "ANNEX_COPTS")

_MAINS = {
    "gtest": ["@system//:gtest_main"],
    "python": [
        "//tests/testing:python_main",
        "//third_party/python",
        "@system//:gtest",
    ],
    "none": [],
}

def annex_test(name, srcs = None, deps = [], main = "gtest", copts = [], **kwargs):
    if main not in _MAINS:
        fail("annex_test %s: main is one of %s, not %r" % (name, sorted(_MAINS.keys()), main))
    all_deps = list(deps)
    for dep in _MAINS[main]:
        if dep not in all_deps:
            all_deps.append(dep)
    native.cc_test(
        name = name,
        srcs = srcs if srcs != None else [name + ".cc"],
        copts = ANNEX_COPTS + copts,
        deps = all_deps,
        **kwargs
    )
