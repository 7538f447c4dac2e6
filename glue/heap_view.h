// HeapView: the session's heap service. It owns the heap engine for the
// session's annex and turns walks into KindedSets: identities with the kind
// (type) and size each object had when it was seen, so that later set
// algebra, partition tables and stats never dereference an address
// (DESIGN.md rule 10). Questions that need live objects (paths, retained
// size, individual objects) walk again and use only objects confirmed alive
// by that walk, within the same GIL hold.
//
//   auto view = session.Get<HeapView>();
//   absl::StatusOr<KindedSet> h = (*view)->Heap();   // annex thread, GIL held
//   std::string table = h->PartitionTable();
#pragma once

#include <Python.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/heap/heap_engine.h"

namespace annex::glue {

class Session;

// An object's kind name as heap views show it: "module.Class" for classes
// defined in Python, tp_name otherwise. Reads the type's own dict only: no
// attribute lookup, no target code, no object created.
// Where: GIL held; `type` alive.
std::string KindName(PyTypeObject* type);

// A set of target objects, each with the kind and size it had when seen.
// Sorted by address. Plain data: any thread.
struct KindedSet {
  std::vector<uintptr_t> addresses;
  std::vector<uint32_t> kinds;   // index into *kind_names
  std::vector<uint64_t> sizes;
  std::shared_ptr<std::vector<std::string>> kind_names =
      std::make_shared<std::vector<std::string>>();

  size_t count() const { return addresses.size(); }
  uint64_t total_size() const;

  struct Row {
    std::string kind;
    uint64_t count = 0;
    uint64_t size = 0;
  };
  // Rows by kind, largest total size first (ties: by count, then name).
  std::vector<Row> Rows() const;
  // Heapy's partition table; `max_rows` rows then a hint for more.
  std::string PartitionTable(size_t max_rows = 10) const;
  // The members whose kind is `kind`.
  KindedSet OfKind(const std::string& kind) const;

  // Set algebra over identities (kinds and sizes travel with them).
  static KindedSet Combine(const KindedSet& a, const KindedSet& b, char op);
};

class HeapView {
 public:
  static absl::StatusOr<std::unique_ptr<HeapView>> Create(Session& session);

  // Everything reachable from the target's roots (since the reference
  // point, when one is set). Where: annex thread, GIL held, annex current.
  absl::StatusOr<KindedSet> Heap();
  // Tracked by the target's gc but unreachable. Where: as Heap().
  absl::StatusOr<KindedSet> HeapU();
  // Remembers the current reachable set. Where: as Heap().
  absl::Status SetRef();
  bool has_ref() const { return has_ref_; }

  // All shortest paths from the roots to the members of `set` still alive,
  // one per line ("%R.sys.modules['app'].__dict__['x']").
  // Where: as Heap(). Walks again.
  absl::StatusOr<std::string> ShortestPaths(const KindedSet& set,
                                            size_t max_paths = 20);
  // Heapy's domisize: bytes freed if every live member of `set` went away.
  // Where: as Heap(). Walks again.
  absl::StatusOr<uint64_t> RetainedSize(const KindedSet& set);
  // One line per live member (up to `limit`): address, kind, size and, for
  // str/bytes/int/float/bool/None, the value; never runs target code.
  // Where: as Heap(). Walks again.
  absl::StatusOr<std::string> ById(const KindedSet& set, size_t limit = 20);

  heap::HeapEngine& engine() { return *engine_; }

  // Kinds and sizes of `sorted` (ascending addresses), which must be alive
  // (GIL held since they were found); `sizes` parallel to it, or null to
  // compute them. Where: as Heap().
  KindedSet Describe(const std::vector<uintptr_t>& sorted,
                     const std::vector<uint64_t>* sizes);

 private:
  explicit HeapView(std::unique_ptr<heap::HeapEngine> engine)
      : engine_(std::move(engine)) {}

  std::unique_ptr<heap::HeapEngine> engine_;
  bool has_ref_ = false;
};

}  // namespace annex::glue
