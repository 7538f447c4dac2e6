// What the annex runtime keeps alive in the target, off its gc lists.
#include "monitor/python/target_footprint.h"

#include <vector>

namespace annex::python {

void TargetFootprint::Hold(PyObject* o) {
  if (!PyObject_IS_GC(o) || !PyObject_GC_IsTracked(o)) return;
  PyObject_GC_UnTrack(o);
  held_.push_back(Py_NewRef(o));
  addresses_.push_back(reinterpret_cast<uintptr_t>(o));
}

void TargetFootprint::HoldModule(PyObject* module) {
  // What importing a builtin module creates: the module, its dict, its
  // functions (which point back at it), its spec and the spec's dict. All
  // are kept alive by our reference until Release(), so taking them
  // off the gc lists cannot make anything uncollectable meanwhile.
  std::vector<PyObject*> candidates = {module};
  PyObject* dict = PyModule_GetDict(module);  // borrowed
  if (dict != nullptr) {
    candidates.push_back(dict);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
      if (PyCFunction_Check(value) && PyCFunction_GET_SELF(value) == module) {
        candidates.push_back(value);
      }
    }
    PyObject* spec = PyDict_GetItemString(dict, "__spec__");
    if (spec != nullptr) {
      candidates.push_back(spec);
      // What only the spec references (its dict, an empty submodule list):
      // found through tp_traverse, which also sees managed dicts and
      // inline attribute values.
      traverseproc traverse = Py_TYPE(spec)->tp_traverse;
      if (traverse != nullptr) {
        traverse(
            spec,
            [](PyObject* o, void* arg) -> int {
              if (o != nullptr && Py_REFCNT(o) == 1 && !PyType_Check(o)) {
                static_cast<std::vector<PyObject*>*>(arg)->push_back(o);
              }
              return 0;
            },
            &candidates);
      }
    }
  }
  for (PyObject* o : candidates) Hold(o);
}

void TargetFootprint::Release() {
  // Back on the gc lists before our references go: what formed a cycle
  // (a module and its functions) is then the gc's to free.
  for (PyObject* o : held_) {
    PyObject_GC_Track(o);
    Py_DECREF(o);
  }
  held_.clear();
  addresses_.clear();
}

}  // namespace annex::python
