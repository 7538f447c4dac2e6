// The one way to define a type of the `annex` module. See type_def.h.
#include "glue/module/type_def.h"

#include <utility>

#include "glue/module/py_ref.h"

namespace annex::glue::module {

AttributeTable::AttributeTable(const PyGetSetDef* getsets_in,
                               const PyMethodDef* methods_in) {
  for (const PyGetSetDef* g = getsets_in; g != nullptr && g->name != nullptr;
       ++g) {
    getsets.push_back(*g);
  }
  for (const PyMethodDef* m = methods_in; m != nullptr && m->ml_name != nullptr;
       ++m) {
    methods.push_back(*m);
  }
}

AttributeTable& AttributeTable::Add(const AttributeTable& more) {
  getsets.insert(getsets.end(), more.getsets.begin(), more.getsets.end());
  methods.insert(methods.end(), more.methods.begin(), more.methods.end());
  return *this;
}

TypeDef::TypeDef(const char* name, const char* doc, Py_ssize_t basicsize,
                 AttributeTable attributes, std::vector<PyType_Slot> slots,
                 destructor dealloc, unsigned int flags)
    : attributes_(std::move(attributes)), slots_(std::move(slots)) {
  const bool has_getsets = !attributes_.getsets.empty();
  const bool has_methods = !attributes_.methods.empty();
  // The end markers: from here on the vectors never change, so the
  // pointers the slots hold stay valid.
  attributes_.getsets.push_back({nullptr, nullptr, nullptr, nullptr, nullptr});
  attributes_.methods.push_back({nullptr, nullptr, 0, nullptr});
  slots_.push_back({Py_tp_doc, const_cast<char*>(doc)});
  if (dealloc != nullptr) {
    slots_.push_back({Py_tp_dealloc, reinterpret_cast<void*>(dealloc)});
  }
  if (has_getsets) {
    slots_.push_back({Py_tp_getset, attributes_.getsets.data()});
  }
  if (has_methods) {
    slots_.push_back({Py_tp_methods, attributes_.methods.data()});
  }
  slots_.push_back({0, nullptr});
  spec_ = {name, static_cast<int>(basicsize), 0, flags, slots_.data()};
}

absl::Span<const PyGetSetDef> TypeDef::getsets() const {
  return absl::MakeConstSpan(attributes_.getsets)
      .first(attributes_.getsets.size() - 1);
}

absl::Span<const PyMethodDef> TypeDef::methods() const {
  return absl::MakeConstSpan(attributes_.methods)
      .first(attributes_.methods.size() - 1);
}

PyTypeObject* TypeDef::AddTo(PyObject* module, const char* attr,
                             PyTypeObject* base, bool constructible) const {
  PyRef bases;
  if (base != nullptr) {
    bases = PyRef::Steal(PyTuple_Pack(1, reinterpret_cast<PyObject*>(base)));
    if (!bases) return nullptr;
  }
  // CPython reads the spec, never writes it.
  PyRef type = PyRef::Steal(PyType_FromModuleAndSpec(
      module, const_cast<PyType_Spec*>(&spec_), bases.get()));
  if (!type) return nullptr;
  if (!constructible) type.type()->tp_new = nullptr;
  if (PyModule_AddObjectRef(module, attr, type.get()) < 0) return nullptr;
  return type.type();  // the module holds it
}

PyTypeObject* AddStructSequence(PyObject* module, const char* attr,
                                PyStructSequence_Desc* desc) {
  PyRef type = PyRef::Steal(PyStructSequence_NewType(desc));
  if (!type || PyModule_AddObjectRef(module, attr, type.get()) < 0) {
    return nullptr;
  }
  return type.type();  // the module holds it
}

}  // namespace annex::glue::module
