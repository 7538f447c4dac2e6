// HeldObjectSet: an ObjectSet whose objects are kept alive by strong
// references, so its addresses stay valid (Heapy's held nodesets).
//
//   absl::StatusOr<HeldObjectSet> held = engine.HeapHeld();  // one walk
//   ... held->objects() stays dereferenceable while held ...
//   engine.Release(*held);                                   // in the target
//
// Rule 10: the references are target references. They are taken in the same
// stretch of GIL holding as the walk that found the objects, and released
// with the target current (dropping the last one runs destructors and
// __del__ in the target). A set destroyed without Release() leaks its
// references rather than release them in the wrong interpreter.
// Move-only; plain data apart from Take/ReleaseNow.
#pragma once

#include <Python.h>

#include <utility>

#include "monitor/heap/object_set.h"

namespace annex::heap {

class HeldObjectSet {
 public:
  HeldObjectSet() = default;
  HeldObjectSet(HeldObjectSet&& other) noexcept
      : objects_(std::move(other.objects_)), held_(other.held_) {
    other.objects_ = ObjectSet();
    other.held_ = false;
  }
  HeldObjectSet& operator=(HeldObjectSet&& other) = delete;
  HeldObjectSet(const HeldObjectSet&) = delete;
  ~HeldObjectSet() = default;  // leaks when still held (see above)

  // Takes a strong reference to every object of `set`. Where: GIL held
  // continuously since the walk that produced `set`, the target current.
  static HeldObjectSet Take(ObjectSet set);
  // Drops the references. Where: GIL held, the target current.
  void ReleaseNow();

  const ObjectSet& objects() const { return objects_; }
  bool held() const { return held_; }

 private:
  ObjectSet objects_;
  bool held_ = false;
};

}  // namespace annex::heap
