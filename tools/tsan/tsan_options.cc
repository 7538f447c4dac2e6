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
  // die_after_fork=0: a child forked from the threaded host starts a new
  // annex (threads) by design (AnnexRuntime's at-fork handlers, docs/
  // architecture.md); TSan otherwise kills such a child. TSan's checking
  // in that child is best effort, which it says when it continues.
  return "second_deadlock_stack=1:halt_on_error=1:history_size=4:"
         "die_after_fork=0";
}

extern "C" const char* __tsan_default_suppressions() { return ""; }
