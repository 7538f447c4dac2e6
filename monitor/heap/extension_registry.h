// Size and traverse functions that extension types register with a heap
// engine (Heapy's function table), for types whose C-level __sizeof__ or
// tp_traverse is missing or incomplete.
//
//   HeapEngine engine(ts);
//   engine.extensions().Register(&MyType, {
//       .size = [](PyObject* o) -> uint64_t { return ...; },
//       .traverse = [](PyObject* o, visitproc visit, void* arg) { ... }});
//
// A registry is owned by its engine (never a global), so two engines in one
// process may describe the same type differently. Registration is by exact
// type; subclasses inherit the entry of their nearest registered base.
// Not thread-safe: register and walk on the same thread (or synchronize).
#pragma once

#include <Python.h>

#include <cstdint>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace annex::heap {

struct ExtensionFunctions {
  // The object's full size in bytes, as sys.getsizeof should report it
  // (pre-header included). Null: the engine's usual size rule.
  // Called during a walk: GIL held, the target current; must not run Python
  // code, allocate Python objects or raise.
  std::function<uint64_t(PyObject*)> size;
  // Calls visit(referent, arg) for each object `obj` references; replaces
  // tp_traverse (and is called even when the type is not a GC type). Null:
  // tp_traverse as usual. Same constraints as `size`.
  std::function<void(PyObject* obj, visitproc visit, void* arg)> traverse;
};

class ExtensionRegistry {
 public:
  // InvalidArgument for a null type or an entry with neither function;
  // AlreadyExists when `type` is registered (Unregister first).
  // Where: any thread; `type` must outlive the entry.
  absl::Status Register(PyTypeObject* type,
                        const ExtensionFunctions& functions);
  // NotFound when absent.
  absl::Status Unregister(PyTypeObject* type);
  // The entry of `type` or of its nearest registered base (tp_base chain),
  // or nullptr. Where: GIL held (reads tp_base).
  const ExtensionFunctions* Find(PyTypeObject* type) const;
  bool empty() const { return entries_.empty(); }
  // Changes with every Register and Unregister (what a kept walk was made
  // with, HeapEngine::SharedGraph).
  uint64_t generation() const { return generation_; }

 private:
  absl::flat_hash_map<PyTypeObject*, ExtensionFunctions> entries_;
  uint64_t generation_ = 0;
};

}  // namespace annex::heap
