// Private to glue/module: the one way a type of the `annex` module is
// defined. A TypeDef holds everything about the type in one place: its
// name and doc, its instance size, one attribute table (getsets and
// methods, each with its doc: dir(x) lists them through object.__dir__
// and help(x) shows them, since they are real descriptors of the type),
// the other slots it has, and what an instance owns (freed by the one
// dealloc, InstanceDealloc). AddTo makes it a heap type of a module
// (multi-phase init: one per interpreter) and adds it there.
//
//   const TypeDef& StatDef() {
//     static const TypeDef* def = new TypeDef(
//         "annex.Stat", "The rows of a partition ...", sizeof(StatObject),
//         AttributeTable{kStatGetSet, kStatMethods},
//         {{Py_tp_repr, ...}, {Py_mp_length, ...}},
//         InstanceDealloc<StatClear>);
//     return *def;
//   }
//   ... StatDef().AddTo(module, "Stat")
//
// A TypeDef lives as long as the process (types of later interpreters,
// e.g. the annex made again after a fork, use the same tables).
#pragma once

#include <Python.h>

#include <vector>

#include "absl/types/span.h"

namespace annex::glue::module {

// A type's attributes: getsets and methods, each with its doc, without
// the null entries that end CPython's arrays (added by TypeDef).
struct AttributeTable {
  std::vector<PyGetSetDef> getsets;
  std::vector<PyMethodDef> methods;

  AttributeTable() = default;
  // From CPython-style arrays (each ends with a null name; either may be
  // nullptr).
  AttributeTable(const PyGetSetDef* getsets, const PyMethodDef* methods);
  // Appends `more`'s entries (a type's attributes from several files).
  AttributeTable& Add(const AttributeTable& more);
};

// The dealloc of every type here: frees what the instance owns (`Clear`,
// unless none), the instance, and its reference to its heap type.
// Where: GIL held, the instance's interpreter current.
template <void (*Clear)(PyObject*) = nullptr>
void InstanceDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  if constexpr (Clear != nullptr) Clear(self);
  type->tp_free(self);
  Py_DECREF(type);
}

class TypeDef {
 public:
  // `name` is the qualified name ("annex.IdSet"); `slots` are the type's
  // slots other than its doc, attributes and dealloc (end marker not
  // needed). `dealloc` is an InstanceDealloc<...>, or nullptr for a
  // subclass of a built-in type whose own dealloc must run (CPython's
  // subtype dealloc then calls it: annex.Text, a str).
  TypeDef(const char* name, const char* doc, Py_ssize_t basicsize,
          AttributeTable attributes, std::vector<PyType_Slot> slots,
          destructor dealloc = InstanceDealloc<>,
          unsigned int flags = Py_TPFLAGS_DEFAULT);
  TypeDef(const TypeDef&) = delete;
  TypeDef& operator=(const TypeDef&) = delete;

  // Makes the type in `module` (its base `base`, or object) and adds it as
  // `attr`; instances are made from C++ only unless `constructible`.
  // Returns the type (borrowed: the module holds it), or nullptr with an
  // error set. Where: module exec, GIL held.
  PyTypeObject* AddTo(PyObject* module, const char* attr,
                      PyTypeObject* base = nullptr,
                      bool constructible = false) const;

  // The attributes (without the end markers), e.g. for a doc text.
  absl::Span<const PyGetSetDef> getsets() const;
  absl::Span<const PyMethodDef> methods() const;

 private:
  // The one store of the attributes: the table, each of its vectors ended
  // by a null entry, so that they are CPython's arrays too (the type's
  // Py_tp_getset and Py_tp_methods point into them). Owned here for the
  // process's life, as the slots: CPython keeps pointers into them.
  AttributeTable attributes_;
  std::vector<PyType_Slot> slots_;  // ended by {0, nullptr}
  PyType_Spec spec_;
};

// A named-tuple type (Heapy's PartRow, StatRow) from `desc`, added to
// `module` as `attr`: the type (borrowed: the module holds it), or nullptr
// with an error set. Where: module exec, GIL held.
PyTypeObject* AddStructSequence(PyObject* module, const char* attr,
                                PyStructSequence_Desc* desc);

}  // namespace annex::glue::module
