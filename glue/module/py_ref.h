// Private to glue/module: an owned reference to a Python object, so that
// every return path of a binding function releases what it made.
//
//   PyRef list = PyRef::Steal(PyList_New(0));   // a new reference
//   if (!list) return nullptr;
//   PyRef item = PyRef::Steal(PyLong_FromLong(1));
//   if (!item || PyList_Append(list.get(), item.get()) < 0) return nullptr;
//   return list.release();                      // handed to the caller
//
// Only for objects of the interpreter that is current where the reference
// is dropped (the annex's own objects): a reference to a target object is
// released in the target (docs/design.md rule 10), never by this type.
#pragma once

#include <Python.h>

#include <utility>

namespace annex::glue::module {

// Move-only owner of one strong reference (or of none). Where: every
// member that drops a reference (the destructor, reset, move assignment)
// needs the GIL held with the object's interpreter current; the others
// touch no Python state.
class PyRef {
 public:
  PyRef() = default;
  // Takes over `o`, a new reference (nullptr: none, e.g. after an error).
  static PyRef Steal(PyObject* o) { return PyRef(o); }
  // A new reference to `o`, a borrowed one (nullptr: none).
  static PyRef NewRef(PyObject* o) {
    Py_XINCREF(o);
    return PyRef(o);
  }
  // A PyTypeObject, a module's type for instance, is an object too.
  static PyRef Steal(PyTypeObject* t) {
    return PyRef(reinterpret_cast<PyObject*>(t));
  }
  static PyRef NewRef(PyTypeObject* t) {
    return NewRef(reinterpret_cast<PyObject*>(t));
  }

  PyRef(PyRef&& other) noexcept : o_(other.release()) {}
  PyRef& operator=(PyRef&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() { Py_XDECREF(o_); }

  PyObject* get() const { return o_; }
  // get() as a type object (unchecked: for references known to be types).
  PyTypeObject* type() const { return reinterpret_cast<PyTypeObject*>(o_); }
  explicit operator bool() const { return o_ != nullptr; }
  // Hands the reference to the caller (a function returning a new
  // reference, or one that steals, e.g. PyTuple_SET_ITEM); none is left.
  PyObject* release() { return std::exchange(o_, nullptr); }
  // Drops the reference held and takes over `o` (a new reference).
  void reset(PyObject* o = nullptr) {
    PyObject* old = std::exchange(o_, o);
    Py_XDECREF(old);
  }

 private:
  explicit PyRef(PyObject* o) : o_(o) {}
  PyObject* o_ = nullptr;
};

}  // namespace annex::glue::module
