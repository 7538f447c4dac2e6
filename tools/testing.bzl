"""annex_test: a GoogleTest binary of Annex's tests, in one place.

Every test gets Annex's compiler flags (tools/copts.bzl) and, unless
`srcs` is given, the source NAME.cc. `main` picks what provides main():

- "gtest" (default): GoogleTest's own main (@system//:gtest_main).
- "python": tests/testing:python_main, which owns one embedded CPython
  interpreter (the target) for the whole binary, with CPython and
  GoogleTest as dependencies.
- "none": the sources bring their own main().

`hp_unittest` declares a Python hp test (tests/hp): a cc_test of the one
driver tests/testing:annex_unittest_main, which runs the unittest module
`src` in the annex, one GoogleTest case per test method.
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

def hp_unittest(name, src, size = "medium", env = {}, data = [], **kwargs):
    """A Python unittest module run in the annex by the hp test driver.

    Every test method of `src` (tests/hp/test_<topic>.py) is one GoogleTest
    case `<TestClass>.<test_method>`; `env` (e.g. PYTHONMALLOC) and `size`
    as for any test. The module is data and its runfiles path the driver's
    argument; the package's hp_helpers.py (the modules' shared helpers) is
    data too.
    """
    native.cc_test(
        name = name,
        size = size,
        env = env,
        data = [src, "hp_helpers.py"] + data,
        args = ["$(rootpath %s)" % src],
        deps = ["//tests/testing:annex_unittest_main"],
        **kwargs
    )
