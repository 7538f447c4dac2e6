// Strong references to the objects of an ObjectSet.
#include "monitor/heap/held_object_set.h"

#include <utility>

namespace annex::heap {

HeldObjectSet HeldObjectSet::Take(ObjectSet set) {
  HeldObjectSet h;
  for (uintptr_t a : set) Py_INCREF(reinterpret_cast<PyObject*>(a));
  h.objects_ = std::move(set);
  h.held_ = true;
  return h;
}

void HeldObjectSet::ReleaseNow() {
  if (!held_) return;
  held_ = false;
  // Copy first: a destructor run by a release may not touch this set, but
  // the references are dropped only after the loop has read every address.
  std::vector<uintptr_t> addresses = objects_.ToVector();
  for (uintptr_t a : addresses) Py_DECREF(reinterpret_cast<PyObject*>(a));
}

}  // namespace annex::heap
