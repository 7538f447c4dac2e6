"""The annex's watch for the modules whose waits annex_waits.py changes.

Run in the annex the first time it imports one of WATCHED (the C finder
that InstallInterruptibleWaits put first on its sys.meta_path calls
_watch then): `holder` is that finder (a module whose find_spec is C).
_watch returns the find_spec that replaces it: it answers for those names,
once each, lets the other finders find the module and wraps the loader,
which puts the real loader back on the module before running it and
applies annex_waits.py's patches around the run. The finder leaves
sys.meta_path once all were seen. A patch that fails leaves the plain
waits; the import itself goes on.
"""
WATCHED = ('threading', 'socket', 'select', 'subprocess', 'ssl')


def _watch(slice_seconds, source, source_path, holder):
    import sys
    pending = set(WATCHED)
    patches = []

    def patch(stage, module=None):
        try:
            if not patches:
                ns = {'__name__': 'annex._waits', 'slice_seconds': slice_seconds}
                exec(compile(source, source_path, 'exec'), ns)
                patches.append(ns)
            step = patches[0].get(stage)
            if step is not None:
                step(*(() if module is None else (module,)))
        except Exception:
            pass

    class loader:
        def __init__(self, real, name):
            self.real = real
            self.name = name

        def create_module(self, spec):
            return self.real.create_module(spec)

        def exec_module(self, module):
            real = self.real
            module.__spec__.loader = real
            module.__loader__ = real
            if not pending and holder in sys.meta_path:
                sys.meta_path.remove(holder)
            patch('before_' + self.name)
            real.exec_module(module)
            patch('after_' + self.name, module)

    def find_spec(name, path=None, target=None):
        if name not in pending:
            return None
        pending.discard(name)
        spec = sys.modules['_frozen_importlib']._find_spec(name, path, target)
        if (spec is not None and spec.loader is not None and
                hasattr(spec.loader, 'exec_module')):
            spec.loader = loader(spec.loader, name)
        return spec

    return find_spec
