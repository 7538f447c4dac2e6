// Test-only walk with tp_traverse.
#include "tests/heap/python_graph.h"

#include <frameobject.h>

#include <algorithm>
#include <unordered_map>

namespace annex::heap::testing {
namespace {

// tp_traverse visitor. Where: inside tp_traverse, GIL held.
int Collect(PyObject* child, void* arg) {
  if (child != nullptr)
    static_cast<std::vector<PyObject*>*>(arg)->push_back(child);
  return 0;
}

// Referents of `obj` in traverse order; executing frames add their locals.
// Where: GIL held.
std::vector<PyObject*> ReferentsOf(PyObject* obj) {
  std::vector<PyObject*> out;
  if (PyObject_IS_GC(obj) && Py_TYPE(obj)->tp_traverse != nullptr) {
    Py_TYPE(obj)->tp_traverse(obj, Collect, &out);
  }
  if (PyDict_Check(obj)) {
    // tp_traverse skips the keys of str-keyed dicts (they cannot form
    // cycles), but they are still held.
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(obj, &pos, &key, &value)) out.push_back(key);
  }
  if (PyFrame_Check(obj)) {
    PyObject* locals = PyFrame_GetLocals(reinterpret_cast<PyFrameObject*>(obj));
    PyObject* items = locals ? PyMapping_Items(locals) : nullptr;
    if (items != nullptr) {
      for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); ++i) {
        // Borrowed: the frame keeps each value alive.
        out.push_back(PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1));
      }
    }
    Py_XDECREF(items);
    Py_XDECREF(locals);
    PyErr_Clear();
  }
  return out;
}

}  // namespace

HeapGraph WalkFrom(
    const std::vector<std::pair<std::string, PyObject*>>& roots) {
  const int gc_was_enabled = PyGC_Disable();
  std::unordered_map<PyObject*, uint32_t> seen;
  std::vector<PyObject*> objects;
  std::vector<std::vector<PyObject*>> referents;
  auto visit = [&](PyObject* obj) {
    if (seen.emplace(obj, objects.size()).second) objects.push_back(obj);
  };
  for (const auto& root : roots) visit(root.second);
  for (size_t i = 0; i < objects.size(); ++i) {
    referents.push_back(ReferentsOf(objects[i]));
    for (PyObject* child : referents.back()) visit(child);
  }
  // Dense ids in address order.
  std::vector<uint32_t> order(objects.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return objects[a] < objects[b]; });
  std::vector<uint32_t> id(objects.size());
  for (uint32_t k = 0; k < order.size(); ++k) id[order[k]] = k;

  HeapGraph g;
  PyObject* sys = PyImport_ImportModule("sys");
  PyObject* getsizeof =
      sys ? PyObject_GetAttrString(sys, "getsizeof") : nullptr;
  g.out_begin.push_back(0);
  for (uint32_t k = 0; k < order.size(); ++k) {
    PyObject* obj = objects[order[k]];
    g.addresses.push_back(reinterpret_cast<uintptr_t>(obj));
    PyObject* size = getsizeof ? PyObject_CallOneArg(getsizeof, obj) : nullptr;
    g.sizes.push_back(size ? PyLong_AsUnsignedLongLong(size) : 0);
    Py_XDECREF(size);
    PyErr_Clear();
    for (PyObject* child : referents[order[k]])
      g.out_targets.push_back(id[seen[child]]);
    g.out_begin.push_back(static_cast<uint32_t>(g.out_targets.size()));
  }
  Py_XDECREF(getsizeof);
  Py_XDECREF(sys);
  for (const auto& root : roots) {
    g.root_names.push_back(root.first);
    g.root_nodes.push_back(id[seen[root.second]]);
  }
  if (gc_was_enabled) PyGC_Enable();
  return g;
}

int64_t NodeOf(const HeapGraph& graph, PyObject* object) {
  return graph.Find(reinterpret_cast<uintptr_t>(object));
}

}  // namespace annex::heap::testing
