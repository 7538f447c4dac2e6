// What the annex runtime keeps alive in the target (AnnexRuntime's
// target_footprint()): objects its registrations created there, held and
// kept off the target's gc lists so that gc.get_objects() and heapu() stay
// as they were, and hidden by heap views through their addresses.
#pragma once

#include <Python.h>

#include <cstdint>
#include <vector>

namespace annex::python {

class TargetFootprint {
 public:
  TargetFootprint() = default;
  TargetFootprint(const TargetFootprint&) = delete;
  TargetFootprint& operator=(const TargetFootprint&) = delete;

  // Holds `o` and takes it off the target's gc lists; an object the gc
  // does not track is left alone. Hold only what cannot become part of
  // garbage while held (our reference keeps it alive until Release()).
  // Where: GIL held, target current.
  void Hold(PyObject* o);
  // Holds a builtin module just imported with what importing it created:
  // its dict, its functions, its spec and what only the spec references.
  // Where: GIL held, target current.
  void HoldModule(PyObject* module);
  // Puts everything held back on the gc lists and drops the references.
  // Where: GIL held, target current.
  void Release();

  // The addresses of what is held. Where: any thread; changes only under
  // Hold, HoldModule and Release.
  const std::vector<uintptr_t>& addresses() const { return addresses_; }

 private:
  std::vector<PyObject*> held_;
  std::vector<uintptr_t> addresses_;
};

}  // namespace annex::python
