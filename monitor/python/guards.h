// RAII scopes for every transition of Python runtime state Annex makes.
//
// Annex runs a second interpreter (the annex) on its own thread beside the
// host's interpreter (the target); both share one GIL (docs/design.md rule 1).
// The annex thread owns two thread states: `target_ts` in the target and
// `annex_ts` in the annex. Every change of "which thread state is current" or
// "who holds the GIL" goes through one of these scopes, so the matching undo
// cannot be forgotten on an early return.
//
//   ThreadStates ts = ...;              // owned by the annex thread
//   {
//     ScopedAnnexEntry entry(handoff, ts);   // GIL held, annex current
//     {
//       ScopedTargetSwap swap(ts);           // target current: read
//       sys.modules
//     }
//   }                                         // GIL released
//
// None of these types is copyable or movable: each undoes exactly what it did
// on the thread that created it.
#pragma once

#include <Python.h>

#include <atomic>
#include <cstdint>
#include <optional>

namespace annex::python {

class GilHandoff;

// The two thread states of the annex thread. Plain data; the annex runtime
// owns and frees them.
struct ThreadStates {
  PyThreadState* target_ts = nullptr;  // in the target interpreter
  PyThreadState* annex_ts = nullptr;   // in the annex interpreter
  // Counts the annex's own stretches of target code (ScopedTargetSwap for
  // kRun), for TargetMark; owned by the annex runtime. Null where the
  // caller runs target code without these scopes (a single interpreter):
  // then no mark can be taken.
  std::atomic<uint64_t>* target_runs = nullptr;
};

// What tells whether the target can have changed between two moments: the
// switch number of the target's GIL (+1 each time a thread state other
// than its last holder takes it) and the annex's own stretches of target
// code. Between two marks taken with the GIL held, the target is unchanged
// (TargetUnchanged) when the annex ran no target code and every switch in
// between was a take by one of Annex's own thread states, noted as it
// took the GIL (cpython_peek.h AnnexNoteOwnGilTake): a thread state of
// anyone else holding the GIL in between means two switches, into it and
// out of it, the first not noted. Then every object of the target is as
// it was (code that changes objects without the GIL breaks CPython's own
// rules). A take by Annex that went unnoted only makes the answer "may
// have changed".
struct TargetMark {
  unsigned long switches = 0;
  uint64_t runs = 0;
};

// The mark now, or nullopt when it cannot be told (no `target_runs`, the
// GIL's state unreadable or not held). Where: annex thread, GIL held,
// `ts.target_ts` current.
std::optional<TargetMark> MarkTarget(const ThreadStates& ts);

// Whether the target is unchanged from `then` to `now` (above). Where: as
// MarkTarget.
bool TargetUnchanged(const TargetMark& then, const TargetMark& now);

// Releases the GIL for the scope and re-takes it (same thread state) after.
// Where: GIL held by the calling thread, any interpreter. The thread state
// that was current is current again after the scope.
class ScopedGilRelease {
 public:
  ScopedGilRelease();
  ~ScopedGilRelease();
  ScopedGilRelease(const ScopedGilRelease&) = delete;
  ScopedGilRelease& operator=(const ScopedGilRelease&) = delete;

 private:
  PyThreadState* saved_;
};

// Releases the GIL for the scope when the calling thread holds it, and
// re-takes it after; does nothing otherwise. For waits on work that needs
// the GIL (joining a thread that enters the annex, waiting for the annex's
// reply) by callers that may or may not hold it. Where: any thread but the
// annex thread, with or without the GIL.
class ScopedGilReleaseIfHeld {
 public:
  ScopedGilReleaseIfHeld();
  ~ScopedGilReleaseIfHeld();
  ScopedGilReleaseIfHeld(const ScopedGilReleaseIfHeld&) = delete;
  ScopedGilReleaseIfHeld& operator=(const ScopedGilReleaseIfHeld&) = delete;

 private:
  PyThreadState* saved_;  // null: the GIL was not held
};

// Makes `ts.target_ts` current for the scope (docs/design.md rule 4: per-
// interpreter state such as sys.modules, gc lists and the thread list belongs
// to whichever interpreter is current), then restores what was current.
// Where: annex thread, GIL held, `ts.annex_ts` or `ts.target_ts` current. A
// no-op when the target is already current (nesting is allowed). Objects
// created inside the scope land in the target's heap: keep that to nothing.
//
// kRun (the default) says the scope may run target code or change target
// objects: it counts in `ts.target_runs` when it begins and ends, so marks
// (TargetMark) taken before and after differ. kRead promises the scope only
// reads (heap questions, stack dumps): marks stay equal across it.
class ScopedTargetSwap {
 public:
  enum class Use { kRun, kRead };
  explicit ScopedTargetSwap(const ThreadStates& ts, Use use = Use::kRun);
  ~ScopedTargetSwap();
  ScopedTargetSwap(const ScopedTargetSwap&) = delete;
  ScopedTargetSwap& operator=(const ScopedTargetSwap&) = delete;

 private:
  PyThreadState* previous_;
  bool swapped_;
  std::atomic<uint64_t>* runs_;  // null for kRead
};

// Makes `ts.annex_ts` current for the scope; the inverse of ScopedTargetSwap.
// Where: annex thread, GIL held. A no-op when the annex is already current.
class ScopedAnnexSwap {
 public:
  explicit ScopedAnnexSwap(const ThreadStates& ts);
  ~ScopedAnnexSwap();
  ScopedAnnexSwap(const ScopedAnnexSwap&) = delete;
  ScopedAnnexSwap& operator=(const ScopedAnnexSwap&) = delete;

 private:
  PyThreadState* previous_;
  bool swapped_;
};

// Takes the GIL on the annex thread and makes the annex current; on exit swaps
// back to `target_ts` and releases the GIL. Entry waits with `target_ts` while
// `handoff` asks the target's main thread to hand the GIL over (docs/design.md
// rule 2), so it gets in within about one switch interval even when a target
// thread runs a CPU-bound loop. It still blocks for as long as a target thread
// holds the GIL without reaching a bytecode boundary (stuck in C).
// Where: annex thread only, GIL not held, no thread state current.
class ScopedAnnexEntry {
 public:
  ScopedAnnexEntry(GilHandoff& handoff, const ThreadStates& ts);
  ~ScopedAnnexEntry();
  ScopedAnnexEntry(const ScopedAnnexEntry&) = delete;
  ScopedAnnexEntry& operator=(const ScopedAnnexEntry&) = delete;

 private:
  const ThreadStates& ts_;
};

// Saves the pending Python exception (if any) and restores it at scope exit,
// so cleanup code can call the C API safely. Where: GIL held, any interpreter;
// construct and destroy with the same thread state current.
class ScopedErrorPreserver {
 public:
  ScopedErrorPreserver();
  ~ScopedErrorPreserver();
  ScopedErrorPreserver(const ScopedErrorPreserver&) = delete;
  ScopedErrorPreserver& operator=(const ScopedErrorPreserver&) = delete;

 private:
  PyObject* type_;
  PyObject* value_;
  PyObject* traceback_;
};

}  // namespace annex::python
