// Lanes: a heap question's long passes split between its own thread and
// helper threads, while the target waits for them.
//
// A heap question holds the target (GIL held, no target thread runs:
// heap_engine.h) for its whole length, so a pass that reads every object
// of a million-object heap is time the target stands still. Most such
// passes read memory at random and wait on cache misses more than they
// compute; a second core waiting on misses of its own halves them.
//
//   const heap::Lanes lanes = engine.lanes();
//   lanes.For(n, [&](size_t begin, size_t end) {
//     for (size_t i = begin; i < end; ++i) out[i] = Py_TYPE(objs[i]);
//   });
//   lanes.Beside([&] { packed = Pack(plain); },    // a helper: plain C++
//                [&] { status = WatchWithPython(); });  // the caller
//
// Rules for what runs on a helper (For's body on every lane, Beside's
// helper side):
// - Plain C++ only: it calls no Python API, allocates no Python object
//   and touches no refcount. The exception is a C API call that only
//   reads objects: it runs no Python code, allocates nothing, sets no
//   error and needs no thread state. Via's naming on the lanes uses two
//   (PyType_IsSubtype, PyDict_Next on a non-free-threaded build). For's
//   body may read target objects: during
//   For the caller runs only slices of the same body, holds the GIL and
//   waits for the helpers, so no object can change or go away. Beside's
//   helper side must not read target objects (its caller side may run
//   Python meanwhile); it works on the caller's plain C++ data.
// - Each slice writes only its own elements (no two slices write the same
//   element): the helpers' writes are visible to the caller once the call
//   returns (the joins order them).
// - What needs Python stays on the caller (Beside's caller side, or a
//   sequential step before or after).
//
// A helper is a thread started for one call and joined before the call
// returns: no thread outlives a call, so there is nothing to stop at
// shutdown and nothing left behind in a forked child. Starting one costs
// about 0.1 ms, so For runs on the caller alone when there is only one
// slice. If a thread cannot be started, the caller does all the work: the
// answer is the same, only slower. For's slices are handed out one at a
// time, so a helper that the machine runs late takes fewer of them and
// never delays the caller by more than one slice. An exception thrown by
// a slice (or a side) stops the handing out and is rethrown on the caller
// once every lane has stopped.
//
// Plain C++ data, copyable. Where: any thread (heap questions call it on
// the annex thread with the GIL held; helpers never take it).
#pragma once

#include <cstddef>

#include "absl/functional/function_ref.h"

namespace annex::heap {

class Lanes {
 public:
  // At most this many threads a call uses, the caller's included.
  static constexpr int kMaxLanes = 4;
  // Items per slice by default: a slice pays for its hand-out (an atomic
  // increment) many times over (tens of microseconds of per-object work),
  // and a million items make 31 slices to share out.
  static constexpr size_t kGrain = 1 << 15;

  // One lane: the caller does everything.
  Lanes() = default;
  // `count` lanes, clamped to [1, kMaxLanes], handing out slices of
  // `grain` items (at least 1; tests use small ones to split small
  // inputs).
  explicit Lanes(int count, size_t grain = kGrain);

  // Two lanes when this process may run on two or more CPUs (its CPU
  // affinity, as a container's CPU set limits it, and its cgroup's CPU
  // quota, when it has one, of two CPUs' time or more), else one. Where:
  // any thread.
  static Lanes ForMachine();

  int count() const { return count_; }
  size_t grain() const { return grain_; }

  // Runs body(begin, end) for the slices of [0, n), each once, on the
  // caller and up to count() - 1 helpers, and returns once every slice
  // ran. Slice s is [s * grain(), min(n, (s + 1) * grain())): callers may
  // keep per-slice results at begin / grain(). With one slice or one
  // lane: the caller alone, in order. Where: any thread; `body` as the
  // rules above say.
  void For(size_t n, absl::FunctionRef<void(size_t, size_t)> body) const;
  // For, asking `stop` on the caller before each slice the caller takes
  // (e.g. [&] { return question_stop.Check(); }): once it says true, no
  // lane starts another slice. Returns false when `stop` said true (then
  // some slices may not have run; helpers start before the caller first
  // asks, so some may have). Where: as For; `stop` runs on the caller
  // only and must run no Python code (helpers read objects meanwhile).
  bool For(size_t n, absl::FunctionRef<void(size_t, size_t)> body,
           absl::FunctionRef<bool()> stop) const;

  // Runs helper_side on a helper and caller_side on the caller, and
  // returns once both ran. With one lane (or no helper to be had):
  // caller_side first, then helper_side, both on the caller. Where: any
  // thread; helper_side as the rules above say (no target objects),
  // caller_side anything the caller may do.
  void Beside(absl::FunctionRef<void()> helper_side,
              absl::FunctionRef<void()> caller_side) const;

 private:
  int count_ = 1;
  size_t grain_ = kGrain;
};

}  // namespace annex::heap
