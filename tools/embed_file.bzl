"""embed_file: a source file (a .py, a page) compiled into the binary.

    load("//tools:embed_file.bzl", "embed_file")
    embed_file(name = "paths_py", src = "python/paths.py", symbol = "kPathsPy")

makes the cc_library `paths_py` whose header `paths_py.h` defines, in
namespace annex::embedded,

    inline constexpr char kPathsPy[] = "...";   // the file's bytes, NUL ended
    inline constexpr char kPathsPyPath[] = "glue/module/python/paths.py";

The bytes are written as octal escapes (any content embeds, no delimiter
to collide with), so the source stays an ordinary file in the tree: edited,
linted and reviewed as Python, and compiled at run time under its path,
which tracebacks then name (`Py_CompileString(kPathsPy, kPathsPyPath, ...)`).
"""

def embed_file(name, src, symbol, visibility = None):
    path = native.package_name() + "/" + src
    native.genrule(
        name = name + "_header",
        srcs = [src],
        outs = [name + ".h"],
        cmd = "\n".join([
            "(",
            "echo '// Generated from %s by //tools:embed_file.bzl; do not edit.'" % path,
            "echo '#pragma once'",
            "echo 'namespace annex::embedded {'",
            "echo '// %s, NUL-terminated.'" % path,
            "echo 'inline constexpr char %s[] ='" % symbol,
            "od -An -v -to1 $< | sed -e 's/ \\([0-7][0-7][0-7]\\)/\\\\\\1/g' -e 's/^\\(.*\\)$$/    \"\\1\"/'",
            "echo '    \"\";'",
            "echo 'inline constexpr char %sPath[] = \"%s\";'" % (symbol, path),
            "echo '}  // namespace annex::embedded'",
            ") >$@",
        ]),
    )
    native.cc_library(
        name = name,
        hdrs = [name + ".h"],
        visibility = visibility,
    )
