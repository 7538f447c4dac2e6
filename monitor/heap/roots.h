// The named roots of the target's heap (docs/design.md "The heap engine").
//
//   ScopedTargetSwap swap(ts);                 // rule 4: target current
//   absl::StatusOr<RootList> roots = CollectRoots({ts.target_ts});
//   for (size_t i = 0; i < roots->size(); ++i) Use(roots->name(i),
//   roots->object(i));
//
// Roots, in this order: "sys.modules" (the modules dict), "sys" (the sys
// module's dict), "builtins" (the builtins dict), then for every thread of
// the target that is running Python code, each frame from the innermost
// outwards as "thread <id> frame <depth>", plus "thread <id> dict" and
// "thread <id> async_exc" when set.
//
// A running frame is usually not an object (CPython creates its frame
// object only when asked), and asking creates one in the target; doing so
// for a frame still in its prologue is unsafe on 3.11 (the frame object is
// left pointing at a frame that then moves into a generator: a crash under
// allocation churn). So frames are read in place (python::ForEachFrame) and
// each reference a frame holds is a root of its own, with the edge that
// names it: root "thread 7 frame 0", edge ".f_globals", object the module
// dict. A frame object that already exists is a root too (edge ""). Thread
// states in `excluded` (the annex's own) and thread states without frames (idle
// helper threads) are skipped. The gc lists are deliberately not roots:
// everything tracked would be reachable and heapu() (tracked minus reachable)
// would be empty.
//
// Path searches (paths.h) start at most roots, but a running frame also
// holds what is not its own: its globals (a module's dict, held by every
// frame running that module's code, and at module level by f_locals too),
// its builtins, the function it runs and that function's code (usually
// reached where the function is defined; function.__globals__ is the
// module's dict again). Starting there too would give one path per frame
// to everything a module holds. So each root has a use (RootList::use,
// HeapGraph::root_uses):
// - kAlias, with the spelling paths use for its object (RootList::alias),
//   for a frame's `.f_globals`, `.f_locals`, `.f_builtins`, `<function>`
//   or `.f_code` whose object is a module's dict in sys.modules
//   ("%R.sys.modules['app'].__dict__"), the sys or builtins root's dict
//   ("%R.builtins"), or what an earlier frame root already holds by one of
//   those edges ("%R['thread 7 frame 0'].f_globals"): never a start;
// - kFallback for the other `<function>` and `.f_code` roots: a start only
//   when no other root reaches the target (a function held by nothing but
//   its running frame);
// - kStart for the rest (frame locals and cells, plain-dict globals, the
//   named roots).
// Those uses keep frames from starting paths through a module's dict, but
// what a frame holds can still reach one as soon as a module's own path
// (a function's `__globals__`, a thread's target). So the roots also name
// the preferred steps into each module of sys.modules and into its dict
// (RootList::preferred_steps, HeapGraph::preferred_in): a shortest path
// enters them that way whenever that way is as short, and the same path
// through other referrers is not listed (paths.h).
// The walk, heapu() and the dominators count every root alike.
#pragma once

#include <Python.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "monitor/heap/graph.h"

namespace annex::heap {

// Named strong references to root objects, each with the edge (Python
// syntax, e.g. ".f_globals", "" for the named object itself) by which the
// named root holds it. Destroy with the GIL held and the target current (rule
// 10: references to target objects are released in the target). Move-only.
class RootList {
 public:
  RootList() = default;
  RootList(RootList&& other) noexcept { *this = std::move(other); }
  RootList& operator=(RootList&& other) noexcept;
  ~RootList();

  size_t size() const { return objects_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  const std::string& edge(size_t i) const { return edges_[i]; }
  // How path searches use this root, and for kAlias the spelling paths
  // use for its object (above).
  RootUse use(size_t i) const { return uses_[i]; }
  const std::string& alias(size_t i) const { return aliases_[i]; }
  PyObject* object(size_t i) const { return objects_[i]; }
  // Takes a new reference; a null object is skipped.
  void Add(std::string name, PyObject* object) {
    Add(std::move(name), std::string(), object);
  }
  void Add(std::string name, std::string edge, PyObject* object);
  void SetUse(size_t i, RootUse use, std::string alias = "") {
    uses_[i] = use;
    aliases_[i] = std::move(alias);
  }
  // The steps by which paths prefer to reach a module and its dict
  // (HeapGraph::preferred_in): (sys.modules, module) and (module, its
  // dict), as addresses; valid for the question that collected them.
  const std::vector<std::pair<uintptr_t, uintptr_t>>& preferred_steps() const {
    return preferred_steps_;
  }
  void AddPreferredStep(const void* from, const void* to) {
    preferred_steps_.emplace_back(reinterpret_cast<uintptr_t>(from),
                                  reinterpret_cast<uintptr_t>(to));
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::string> edges_;
  std::vector<RootUse> uses_;
  std::vector<std::string> aliases_;
  std::vector<PyObject*> objects_;
  std::vector<std::pair<uintptr_t, uintptr_t>> preferred_steps_;
};

// Where: GIL held, the target interpreter current (the calling thread's
// current thread state belongs to it). Errors: FailedPrecondition when no
// thread state is current or sys.modules is gone (finalizing).
absl::StatusOr<RootList> CollectRoots(
    const absl::flat_hash_set<PyThreadState*>& excluded);

}  // namespace annex::heap
