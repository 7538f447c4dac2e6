// How a walk traverses and sizes each type.
#include "monitor/heap/internal/type_info.h"

#include <cstdlib>

#include "monitor/python/version.h"

namespace annex::heap::internal {
namespace {

// The C function behind `descr` when it is a built-in method descriptor
// taking no arguments (a C-level __sizeof__), else null.
// Where: GIL held, any interpreter (reads the descriptor only).
PyCFunction CSizeof(PyObject* descr) {
  if (descr == nullptr || !Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
    return nullptr;
  }
  PyMethodDef* def = reinterpret_cast<PyMethodDescrObject*>(descr)->d_method;
  if (def == nullptr || (def->ml_flags & METH_NOARGS) == 0) return nullptr;
  return def->ml_meth;
}

}  // namespace

TypeInfoCache::TypeInfoCache(const ExtensionRegistry* registry)
    : registry_(registry) {
  // Already interned in every interpreter (a slot name), so this finds the
  // existing object and creates nothing in the target.
  sizeof_name_ = PyUnicode_InternFromString("__sizeof__");
  if (sizeof_name_ == nullptr) {
    PyErr_Clear();
    return;
  }
  object_sizeof_ = CSizeof(_PyType_Lookup(&PyBaseObject_Type, sizeof_name_));
}

TypeInfoCache::~TypeInfoCache() { Py_XDECREF(sizeof_name_); }

TypeInfo& TypeInfoCache::Miss(PyTypeObject* type, size_t slot) {
  auto it = map_.find(type);
  if (it == map_.end()) it = map_.emplace(type, Compute(type)).first;
  cache_type_[slot] = type;
  cache_info_[slot] = &it->second;
  return it->second;
}

TypeInfo TypeInfoCache::Compute(PyTypeObject* type) {
  TypeInfo info;
  if (PyType_HasFeature(type, Py_TPFLAGS_HAVE_GC)) {
    info.traverse = type->tp_traverse;
    info.check_is_gc = type->tp_is_gc != nullptr;
  }
  info.is_frame = type == &PyFrame_Type;
  info.is_dict = PyType_IsSubtype(type, &PyDict_Type) != 0;
  info.is_type = PyType_IsSubtype(type, &PyType_Type) != 0;
  info.extras = python::ExtraReferentsFor(type);
  info.inline_values = python::MayHaveInlineValues(type);
  if (registry_ != nullptr && !registry_->empty()) {
    info.ext = registry_->Find(type);
  }
  if (info.ext != nullptr && info.ext->size) {
    info.size_rule = TypeInfo::SizeRule::kExtension;
  } else if (sizeof_name_ != nullptr) {
    // _PyType_Lookup reads the MRO's dicts (and the method cache); it runs
    // no Python code. A Python-level __sizeof__ is never called.
    PyObject* descr = _PyType_Lookup(type, sizeof_name_);
    PyCFunction fn = CSizeof(descr);
    if (fn != nullptr && fn != object_sizeof_) {
      info.size_rule = TypeInfo::SizeRule::kCMethod;
      info.sizeof_fn = fn;
    } else if (fn == nullptr && descr != nullptr &&
               Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
      // C code all the same (a method descriptor wraps a PyMethodDef).
      info.size_rule = TypeInfo::SizeRule::kCDescriptor;
      info.sizeof_descr = descr;
    }
  }
  return info;
}

uint64_t TypeInfoCache::SizeOf(PyObject* obj, TypeInfo& info) {
  PyTypeObject* type = Py_TYPE(obj);
  uint64_t pre_header;
  if (info.is_type) {
    pre_header = python::SizeofPreHeader(obj);  // static types differ
  } else {
    if (!info.pre_header_known) {
      info.pre_header = python::SizeofPreHeader(obj);
      info.pre_header_known = true;
    }
    pre_header = info.pre_header;
  }
  switch (info.size_rule) {
    case TypeInfo::SizeRule::kExtension:
      return info.ext->size(obj);
    case TypeInfo::SizeRule::kCMethod: {
      PyObject* r = info.sizeof_fn(obj, nullptr);
      if (r != nullptr) {
        const Py_ssize_t n = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (n >= 0) {
          return static_cast<uint64_t>(n) + pre_header;
        }
      }
      PyErr_Clear();
      break;  // fall back to the basic rule
    }
    case TypeInfo::SizeRule::kCDescriptor: {
      PyObject* r = PyObject_Vectorcall(info.sizeof_descr, &obj, 1, nullptr);
      if (r != nullptr) {
        const Py_ssize_t n = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (n >= 0) return static_cast<uint64_t>(n) + pre_header;
      }
      PyErr_Clear();
      break;
    }
    case TypeInfo::SizeRule::kBasic:
      break;
  }
  uint64_t n = static_cast<uint64_t>(type->tp_basicsize);
  if (type->tp_itemsize != 0) {
    n += static_cast<uint64_t>(std::labs(Py_SIZE(obj))) *
         static_cast<uint64_t>(type->tp_itemsize);
  }
  return n + pre_header;
}

}  // namespace annex::heap::internal
