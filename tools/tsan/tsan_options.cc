// ThreadSanitizer defaults for `--config=tsan` builds (docs: DEVELOPERS.md,
// "ThreadSanitizer"). TSan asks for these two functions at start-up; linking
// them into every test binary keeps the suppressions in the repository and
// needs no TSAN_OPTIONS path that depends on where the test runs.
//
// Only our code is instrumented. CPython, Abseil and GoogleTest are Debian's
// uninstrumented shared libraries: TSan sees none of their memory accesses,
// but it does see their pthread calls (the GIL is a pthread mutex and
// condition variable), so the GIL orders our accesses as it should.
// Abseil's locks use futexes, not pthreads: absl_sync.cc tells TSan about
// them.
// A suppression is added only for a report that is not about our code, with
// the reason next to it.

extern "C" const char* __tsan_default_options() {
  // second_deadlock_stack: both stacks of a lock-order report.
  // halt_on_error: the first report fails the test, as ASan does here.
  return "second_deadlock_stack=1:halt_on_error=1:history_size=4";
}

extern "C" const char* __tsan_default_suppressions() { return ""; }
