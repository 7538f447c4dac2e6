// Identity of target objects over time: the "death watch".
//
// An address alone is not an identity: CPython reuses the memory of a dead
// object at once (pymalloc's free lists, and the per-type free lists of
// float, tuple, list, dict, ...). A set that must later tell which of its
// members are still the same objects (a reference point, a kept set)
// watches them here: while at least one watcher exists, a version-specific
// hook sees deaths and counts them per watched block, and a member is the
// same object exactly while the count of its block is the one recorded
// when it was watched. Dead is forever: a new object at the same address is
// not a member.
//
//   // GIL held, the objects alive (found by this GIL hold's walk):
//   auto w = python::WatchedObjects::Watch(sorted_addresses);
//   ... the target runs ...
//   (*w)->Same(i)   // GIL held: member i is still the object watched
//
// How deaths are seen (rule 11: the only version-specific part):
// - 3.13: PyRefTracer_SetTracer (DESTROY before tp_dealloc, and CREATE at a
//   watched address, which proves the old member dead), chained to a tracer
//   installed before (tracemalloc's) and restored on uninstall.
// - 3.11 and 3.12: a hook on the PYMEM_DOMAIN_OBJ allocator, chained to the
//   previous one (free/realloc of a watched block; malloc and calloc go
//   straight to the previous allocator), plus wrappers of tp_dealloc of the
//   static types that keep a free list of objects (float, tuple, list, dict,
//   slice, context, async generator asend and wrapped value): a member put on a
//   free list is never freed through the allocator. (MemoryError's free list is
//   not covered.) The wrappers of tuple, list and dict open the trashcan (which
//   the originals cannot while wrapped) where the thread's stack is nearly used
//   up: a deep chain of them is freed without overflowing the C stack, as
//   without the watch, and shallow deallocs cost no more than a tail call.
//   A 3.12 dict with dict watchers (PyDict_AddWatcher) is left to the original
//   alone: no trashcan for it while the death watch is armed.
// Known gaps (all versions): a specialized ceval instruction that destroys
// an operand directly (_PyFloat_ExactDealloc, _PyLong_ExactDealloc,
// _PyUnicode_ExactDealloc through _Py_DECREF_SPECIALIZED; 3.12 also reuses
// a float operand in place) bypasses tp_dealloc and the 3.13 tracer. Only a
// temporary dies there (its last reference was on the value stack), and a
// float that goes back to the float free list is then invisible until its
// block is allocated or freed again through the hooks. A hook displaced by
// code that does not chain (3.13's tracemalloc.start() replaces the ref
// tracer) is reported by Intact().
//
// The watched keys are one sorted table shared by all watches: Watch and
// the release of a watch are sequential merges with it (no per-member hash
// lookups), and a hook that passes a bit filter only logs the key; logged
// keys are counted into the table in sorted batches of 16 K, by the hook
// that fills a batch (about a millisecond) or before the counts are read.
//
// Process-wide state; every function needs the GIL (any interpreter: hooks
// and static types are shared by the target and the annex), except where
// said otherwise. The hooks are installed with the first watched object
// and removed when the last watcher is released and flushed; when another
// hook was installed above ours (tracemalloc on 3.11/3.12), ours stays
// chained but disarmed.
#pragma once

#include <Python.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace annex::python {

class WatchedObjects {
 public:
  // Starts watching `sorted` (ascending, distinct addresses of objects
  // alive now). Installs the hooks when none are. `key_offsets`: each
  // member's KeyOffset, when the caller has read the members' types
  // already (glue's ClassifyKinds does); empty (or of another length than
  // `sorted`, which is a caller's mistake): each object's type is read
  // here. Where: GIL held, any interpreter current.
  static absl::StatusOr<std::shared_ptr<WatchedObjects>> Watch(
      const std::vector<uintptr_t>& sorted,
      std::vector<uint8_t> key_offsets = {});
  // How far before an object of `type` its watch key lies: the pre-header
  // on 3.11/3.12 (the key is where the allocator's block starts), 0 on
  // 3.13 (the tracer sees objects). The type alone decides it. Where: any
  // thread; `type` alive.
  static uint8_t KeyOffset(PyTypeObject* type);

  // Releases the watch. Where: any thread, GIL or not: the keys are
  // dropped by the next FlushDeathWatch() (called by Watch and by callers
  // that hold the GIL).
  ~WatchedObjects();
  WatchedObjects(const WatchedObjects&) = delete;
  WatchedObjects& operator=(const WatchedObjects&) = delete;

  size_t size() const { return addresses_.size(); }
  const std::vector<uintptr_t>& addresses() const { return addresses_; }
  // Whether member i is still the object it was when watched. Where: GIL
  // held (reads the watch's counts; never the object). Members asked in
  // ascending order cost O(1) each, one at random O(log watched keys).
  bool Same(size_t i) const;
  // Index of `address` among the members, or -1. Where: any thread.
  int64_t Find(uintptr_t address) const;
  // Bytes this watch holds (its per-member vectors; not the registry's
  // shared entry for each key). Where: any thread.
  size_t MemoryBytes() const;

 private:
  WatchedObjects() = default;
  std::vector<uintptr_t> addresses_;  // objects, ascending
  std::vector<uint32_t> deaths_;      // deaths counted at the block then
  std::vector<uint8_t> pre_;          // object - block start (3.11/3.12)
};

// Drops the keys of released watches and uninstalls the hooks when nothing
// is watched any more. Where: GIL held.
void FlushDeathWatch();

// How many times a hook saw a possible death of a watched block so far
// (grows only; every death of a watched block is one, and so is a death at
// a key that shares the block's filter bit): a set whose members were all
// the same objects at epoch E still are while the epoch is E.
// Where: GIL held.
uint64_t DeathWatchEpoch();

// The keys the hooks saw after epoch `since` (a DeathWatchEpoch() value),
// oldest first, into `keys` (repeats and keys of no member possible): only
// members whose key is among them can have died since. A member's key is
// its address or at most kMaxKeyDistance bytes below it (the start of its
// memory block on 3.11/3.12). False when more happened than the watch
// remembers (the last 2^20 while hooks are installed): then every member
// must be checked. Where: GIL held.
bool DeathsSince(uint64_t since, std::vector<uintptr_t>* keys);
inline constexpr uintptr_t kMaxKeyDistance = 255;

struct DeathWatchStats {
  bool installed = false;     // hooks in place
  size_t watched_blocks = 0;  // distinct keys watched
  uint64_t deaths_seen = 0;   // DeathWatchEpoch()
  bool intact = true;         // no hook found displaced since installed
};
// Where: GIL held.
DeathWatchStats GetDeathWatchStats();

// Whether the hooks are still where they were installed (3.13: our ref
// tracer is the current one; 3.11/3.12: our allocator hook is still in the
// OBJ chain as far as can be told). Records a displacement in
// GetDeathWatchStats().intact. Where: GIL held.
bool DeathWatchIntact();

}  // namespace annex::python
