"""One static archive holding every object of a cc_library's closure.

Bazel 4 has no cc_static_library: a cc_library's own archive holds only its
own objects. This rule merges the (position-independent) archives of all
transitive cc_library deps into one, with `ar -M`, and writes the link flags
those libraries carry (system libraries such as Abseil) to OUT.linkopts, one
per line, for the pkg-config and CMake files.
"""

def _static_archive_impl(ctx):
    archives = []
    flags = []
    for dep in ctx.attr.deps:
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            for lib in linker_input.libraries:
                a = lib.pic_static_library or lib.static_library
                if a and a not in archives:
                    archives.append(a)
            for f in linker_input.user_link_flags:
                if f not in flags:
                    flags.append(f)
    out = ctx.actions.declare_file(ctx.attr.name + ".a")
    opts = ctx.actions.declare_file(ctx.attr.name + ".a.linkopts")
    script = ctx.actions.declare_file(ctx.attr.name + ".mri")
    lines = ["create " + out.path]
    lines += ["addlib " + a.path for a in archives]
    lines += ["save", "end", ""]
    ctx.actions.write(script, "\n".join(lines))
    ctx.actions.write(opts, "\n".join(flags) + "\n")
    ctx.actions.run_shell(
        inputs = archives + [script],
        outputs = [out],
        command = "rm -f %s && ar -M < %s" % (out.path, script.path),
        mnemonic = "StaticArchive",
        progress_message = "Merging %d archives into %s" % (len(archives), out.short_path),
    )
    return [DefaultInfo(files = depset([out, opts]))]

static_archive = rule(
    implementation = _static_archive_impl,
    attrs = {"deps": attr.label_list(providers = [CcInfo])},
)
