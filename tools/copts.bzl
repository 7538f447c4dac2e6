"""Compiler flags for Annex's own code, in one place."""

ANNEX_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
    "-Wno-unused-parameter",
]
