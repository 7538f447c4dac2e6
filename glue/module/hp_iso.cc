// hp.iso('expr'): target objects named by a Python expression that is read,
// not run. The expression is parsed in the annex (its `ast` module) into
// paths of names, attributes and constant subscripts; each path is then
// followed in the target by reading objects in place, inside one heap
// question: no target code runs (no __getattr__, property, __getitem__,
// __eq__ or __hash__), nothing is created in the target, and only the ids
// found leave the question (hp.idset's rule: target objects never reach
// the annex). What cannot be read that way is refused with a ValueError
// saying why.
#include <Python.h>
#include <structmember.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"
#include "monitor/python/version.h"

namespace annex::glue::module {
namespace {

// One step of a path: a name (the first step), `.attr` or `[key]`. `key`
// is an annex str (names, attributes, str keys) or int, owned (released
// with the annex current, after the question).
struct Step {
  enum Kind { kName, kAttr, kItem };
  Kind kind;
  PyRef key;
  std::string text;  // how the step is written, for messages
};
using Path = std::vector<Step>;

std::string NodeName(PyObject* node) { return Py_TYPE(node)->tp_name; }

// Converts the ast node `node` into `path` (steps appended). false with
// ValueError set. Where: annex thread, GIL held, annex current.
bool ToPath(PyObject* node, Path* path) {
  const std::string type = NodeName(node);
  if (type == "Name") {
    PyRef id = PyRef::Steal(PyObject_GetAttrString(node, "id"));
    if (!id) return false;
    const char* text = PyUnicode_AsUTF8(id.get());
    if (text == nullptr) return false;
    path->push_back({Step::kName, std::move(id), text});
    return true;
  }
  if (type == "Attribute") {
    PyRef value = PyRef::Steal(PyObject_GetAttrString(node, "value"));
    if (!value || !ToPath(value.get(), path)) return false;
    PyRef attr = PyRef::Steal(PyObject_GetAttrString(node, "attr"));
    if (!attr) return false;
    const char* text = PyUnicode_AsUTF8(attr.get());
    if (text == nullptr) return false;
    path->push_back({Step::kAttr, std::move(attr), absl::StrCat(".", text)});
    return true;
  }
  if (type == "Subscript") {
    PyRef value = PyRef::Steal(PyObject_GetAttrString(node, "value"));
    if (!value || !ToPath(value.get(), path)) return false;
    PyRef slice = PyRef::Steal(PyObject_GetAttrString(node, "slice"));
    if (!slice) return false;
    PyRef key;
    if (NodeName(slice.get()) == "Constant") {
      key = PyRef::Steal(PyObject_GetAttrString(slice.get(), "value"));
    } else if (NodeName(slice.get()) == "UnaryOp") {
      // -3: a negative index.
      PyRef op = PyRef::Steal(PyObject_GetAttrString(slice.get(), "op"));
      PyRef operand =
          PyRef::Steal(PyObject_GetAttrString(slice.get(), "operand"));
      if (op && operand && NodeName(op.get()) == "USub" &&
          NodeName(operand.get()) == "Constant") {
        PyRef v = PyRef::Steal(PyObject_GetAttrString(operand.get(), "value"));
        if (v && PyLong_CheckExact(v.get())) {
          key = PyRef::Steal(PyNumber_Negative(v.get()));
        }
      }
    }
    if (!key && PyErr_Occurred()) return false;
    if (!key ||
        !(PyUnicode_CheckExact(key.get()) || PyLong_CheckExact(key.get()))) {
      PyErr_SetString(PyExc_ValueError,
                      "hp.iso(expr): a subscript must be a str or int "
                      "constant, e.g. cache['key'] or items[-1]");
      return false;
    }
    std::string text = absl::StrCat("[", ReprText(key.get()), "]");
    path->push_back({Step::kItem, std::move(key), std::move(text)});
    return true;
  }
  PyErr_Format(PyExc_ValueError,
               "hp.iso(expr): only names, .attributes and [constant] "
               "subscripts are read in the target (no target code runs); "
               "got %s",
               type.c_str());
  return false;
}

// The expression `text` as paths: one, or one per element of a top-level
// tuple or list. false with an exception set. Where: as ToPath.
bool ParsePaths(PyObject* text, std::vector<Path>* paths) {
  PyRef ast = PyRef::Steal(PyImport_ImportModule("ast"));
  if (!ast) return false;
  PyRef tree = PyRef::Steal(
      PyObject_CallMethod(ast.get(), "parse", "Oss", text, "<hp.iso>", "eval"));
  if (!tree) {
    if (PyErr_ExceptionMatches(PyExc_SyntaxError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_ValueError, "hp.iso(expr): %R is not an expression",
                   text);
    }
    return false;
  }
  PyRef body = PyRef::Steal(PyObject_GetAttrString(tree.get(), "body"));
  if (!body) return false;
  const std::string type = NodeName(body.get());
  if (type == "Tuple" || type == "List") {
    PyRef elts = PyRef::Steal(PyObject_GetAttrString(body.get(), "elts"));
    if (!elts || !PyList_Check(elts.get())) return false;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(elts.get()); ++i) {
      paths->emplace_back();
      if (!ToPath(PyList_GET_ITEM(elts.get(), i), &paths->back())) {
        return false;
      }
    }
    return true;
  }
  paths->emplace_back();
  return ToPath(body.get(), &paths->back());
}

// ---- Reading in the target (inside a question: create nothing, run no
// code, set no error). All return borrowed references.

// The strs the reading compares with, made in the annex beforehand (a str
// made while the target is current would be the target's).
struct Names {
  PyRef main = PyRef::Steal(PyUnicode_FromString("__main__"));
  PyRef getattribute = PyRef::Steal(PyUnicode_FromString("__getattribute__"));
  PyRef dict = PyRef::Steal(PyUnicode_FromString("__dict__"));
  PyRef klass = PyRef::Steal(PyUnicode_FromString("__class__"));
  bool ok() const { return main && getattribute && dict && klass; }
};

bool KeyMatches(PyObject* k, PyObject* want) {
  if (PyUnicode_CheckExact(want)) {
    return PyUnicode_CheckExact(k) && PyUnicode_Compare(k, want) == 0;
  }
  // An exact int against an exact int: long_richcompare, no code.
  return PyLong_CheckExact(k) && PyObject_RichCompareBool(k, want, Py_EQ) == 1;
}

PyObject* DictFind(PyObject* dict, PyObject* want) {
  if (dict == nullptr || !PyDict_Check(dict)) return nullptr;
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (PyDict_Next(dict, &pos, &k, &v)) {
    if (KeyMatches(k, want)) return v;
  }
  return nullptr;
}

// The attribute `name` of a heap type's MRO (its classes' own dicts;
// built-in types' dicts are not read), or nullptr.
PyObject* TypeAttr(PyTypeObject* type, PyObject* name) {
  PyObject* mro = type->tp_mro;
  if (mro == nullptr || !PyTuple_Check(mro)) return nullptr;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); ++i) {
    PyTypeObject* t = reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(mro, i));
    if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) continue;
    if (PyObject* v = DictFind(t->tp_dict, name)) return v;
  }
  return nullptr;
}

// A C member (PyMemberDef) named `name` of a built-in type in `type`'s
// MRO that holds an object (e.g. a method's __self__, a code object's
// co_name), or nullptr. Names are compared by their characters.
PyMemberDef* BuiltinMember(PyTypeObject* type, PyObject* name) {
  PyObject* mro = type->tp_mro;
  if (mro == nullptr || !PyTuple_Check(mro)) return nullptr;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); ++i) {
    PyTypeObject* t = reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(mro, i));
    if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) continue;
    for (PyMemberDef* m = t->tp_members; m != nullptr && m->name != nullptr;
         ++m) {
      if (PyUnicode_CompareWithASCIIString(name, m->name) == 0) return m;
    }
  }
  return nullptr;
}

// The object a C member holds in `obj`, or nullptr with `why` said.
PyObject* MemberValue(PyObject* obj, PyMemberDef* m, std::string* why) {
#ifdef Py_RELATIVE_OFFSET
  if (m->flags & Py_RELATIVE_OFFSET) {
    *why = "it is a C member with a relative offset";
    return nullptr;
  }
#endif
  if (m->type != T_OBJECT_EX && m->type != T_OBJECT) {
    *why = "it is a C member that is not an object";
    return nullptr;
  }
  PyObject* v =
      *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj) + m->offset);
  if (v == nullptr) *why = "the slot is not set";
  return v;
}

bool Is(PyObject* name, const char* want) {
  return PyUnicode_CompareWithASCIIString(name, want) == 0;
}

// The attributes of classes and functions that Python computes but that
// are fields of the object, read in place: a class's __name__,
// __qualname__ (heap types), __mro__, __bases__, __base__; a function's
// __name__, __qualname__, __code__, __defaults__, __kwdefaults__.
// nullptr (and `*known` false) for other names.
PyObject* FieldAttr(PyObject* obj, PyObject* name, bool* known) {
  *known = true;
  if (PyType_Check(obj)) {
    PyTypeObject* t = reinterpret_cast<PyTypeObject*>(obj);
    const bool heap = (t->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
    auto* ht = reinterpret_cast<PyHeapTypeObject*>(obj);
    if (Is(name, "__name__") && heap) return ht->ht_name;
    if (Is(name, "__qualname__") && heap) return ht->ht_qualname;
    if (Is(name, "__mro__")) return t->tp_mro;
    if (Is(name, "__bases__")) return t->tp_bases;
    if (Is(name, "__base__")) {
      return t->tp_base != nullptr ? reinterpret_cast<PyObject*>(t->tp_base)
                                   : Py_None;
    }
  } else if (PyFunction_Check(obj)) {
    auto* f = reinterpret_cast<PyFunctionObject*>(obj);
    if (Is(name, "__name__")) return f->func_name;
    if (Is(name, "__qualname__")) return f->func_qualname;
    if (Is(name, "__code__")) return f->func_code;
    if (Is(name, "__defaults__")) {
      return f->func_defaults != nullptr ? f->func_defaults : Py_None;
    }
    if (Is(name, "__kwdefaults__")) {
      return f->func_kwdefaults != nullptr ? f->func_kwdefaults : Py_None;
    }
  }
  *known = false;
  return nullptr;
}

// obj.name read in place, or nullptr with `why` said.
PyObject* Attr(PyObject* obj, PyObject* name, const Names& names,
               std::string* why) {
  bool known = false;
  if (PyObject* v = FieldAttr(obj, name, &known); known) {
    if (v == nullptr) *why = "the field is not set";
    return v;
  }
  // .__class__: the type. .__dict__: the attribute dict object itself
  // (Python would wrap a class's in a new mappingproxy; a module's and an
  // instance's existing one are what Python gives).
  if (PyUnicode_Compare(name, names.klass.get()) == 0) {
    return reinterpret_cast<PyObject*>(Py_TYPE(obj));
  }
  if (PyUnicode_Compare(name, names.dict.get()) == 0) {
    PyObject* d = nullptr;
    if (PyModule_Check(obj)) {
      d = PyModule_GetDict(obj);
    } else if (PyType_Check(obj)) {
      PyTypeObject* t = reinterpret_cast<PyTypeObject*>(obj);
      d = (t->tp_flags & Py_TPFLAGS_HEAPTYPE) ? t->tp_dict : nullptr;
      if (d == nullptr) *why = "built-in types' dicts are not read";
      return d;
    } else {
      d = python::ExistingInstanceDict(obj);
    }
    if (d == nullptr) {
      *why =
          "the object has no dict object (its attributes may be held "
          "inline; reading __dict__ would make one)";
    }
    return d;
  }
  if (PyModule_Check(obj)) {
    if (PyObject* v = DictFind(PyModule_GetDict(obj), name)) return v;
    *why = "the module has no such global";
    return nullptr;
  }
  if (PyType_Check(obj)) {
    if (PyObject* v = TypeAttr(reinterpret_cast<PyTypeObject*>(obj), name)) {
      return v;
    }
    *why = "no class in its MRO defines it (built-in types are not read)";
    return nullptr;
  }
  PyTypeObject* type = Py_TYPE(obj);
  if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
    // A built-in object's C member is a field, whatever its lookup does.
    if (PyMemberDef* m = BuiltinMember(type, name)) {
      return MemberValue(obj, m, why);
    }
  }
  if (type->tp_getattro != PyObject_GenericGetAttr) {
    // A class with __getattr__ still looks up as usual first; one with
    // __getattribute__, or a C type with its own lookup, does not.
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) ||
        TypeAttr(type, names.getattribute.get()) != nullptr) {
      *why =
          "its type has its own attribute lookup (running it would run "
          "code)";
      return nullptr;
    }
  }
  PyObject* descr = TypeAttr(type, name);
  if (descr != nullptr && Py_TYPE(descr)->tp_descr_set != nullptr) {
    if (Py_TYPE(descr) != &PyMemberDescr_Type) {
      *why =
          "it is a property or another data descriptor (reading it would "
          "run code)";
      return nullptr;
    }
    return MemberValue(
        obj, reinterpret_cast<PyMemberDescrObject*>(descr)->d_member, why);
  }
  if (descr == nullptr) {
    // A built-in type's C member: a method's __self__, a code's co_name.
    if (PyMemberDef* m = BuiltinMember(type, name)) {
      return MemberValue(obj, m, why);
    }
  }
  if (PyObject* v = DictFind(python::ExistingInstanceDict(obj), name)) return v;
  if (PyObject* v = python::InlineAttributeNamed(obj, name)) return v;
  // A class attribute (a function stays a function: no bound method is made).
  if (descr != nullptr) return descr;
  *why = "the object has no such attribute";
  return nullptr;
}

PyObject* Item(PyObject* obj, PyObject* key, std::string* why) {
  if (PyDict_Check(obj)) {
    if (PyObject* v = DictFind(obj, key)) return v;
    *why = "the dict has no such key (only str and int keys are compared)";
    return nullptr;
  }
  if ((PyList_Check(obj) || PyTuple_Check(obj)) && PyLong_CheckExact(key)) {
    const Py_ssize_t n =
        PyList_Check(obj) ? PyList_GET_SIZE(obj) : PyTuple_GET_SIZE(obj);
    int overflow = 0;
    long long i = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (!overflow && i < 0) i += n;
    if (overflow || i < 0 || i >= n) {
      *why = "index out of range";
      return nullptr;
    }
    return PyList_Check(obj) ? PyList_GET_ITEM(obj, i)
                             : PyTuple_GET_ITEM(obj, i);
  }
  *why = absl::StrCat("a ", Py_TYPE(obj)->tp_name,
                      " is not read by subscript (dicts by str or int key, "
                      "lists and tuples by int index)");
  return nullptr;
}

// Follows `path` from the target's __main__ globals (then sys.modules for
// a module of that name). Where: inside a question (target current).
PyObject* Follow(const Path& path, const Names& names, std::string* error) {
  PyObject* obj = nullptr;
  std::string done;
  for (const Step& s : path) {
    std::string why;
    if (s.kind == Step::kName) {
      PyObject* modules = PyImport_GetModuleDict();
      PyObject* main = DictFind(modules, names.main.get());
      obj = main != nullptr && PyModule_Check(main)
                ? DictFind(PyModule_GetDict(main), s.key.get())
                : nullptr;
      if (obj == nullptr) obj = DictFind(modules, s.key.get());
      if (obj == nullptr) why = "no such global in __main__ nor module";
    } else if (s.kind == Step::kAttr) {
      obj = Attr(obj, s.key.get(), names, &why);
    } else {
      obj = Item(obj, s.key.get(), &why);
    }
    done += s.text;
    if (obj == nullptr) {
      *error = absl::StrCat("hp.iso(expr): ", done, ": ", why);
      return nullptr;
    }
  }
  return obj;
}

// Follows the attribute and item steps of `path` from `obj` (a Name
// step is skipped), or nullptr with `why` said. Where: as Follow.
PyObject* FollowFrom(PyObject* obj, const Path& path, const Names& names,
                     std::string* why) {
  for (const Step& s : path) {
    if (s.kind == Step::kAttr) {
      obj = Attr(obj, s.key.get(), names, why);
    } else if (s.kind == Step::kItem) {
      obj = Item(obj, s.key.get(), why);
    }
    if (obj == nullptr) return nullptr;
  }
  return obj;
}

}  // namespace

PyObject* HpMaprox(PyObject* idset, PyObject* suffix) {
  if (!PyUnicode_Check(suffix)) {
    return PyErr_Format(PyExc_TypeError,
                        "maprox(expr): expr is a str of .attribute and "
                        "[constant] steps, e.g. '.__class__.__name__', not "
                        "%.100s",
                        Py_TYPE(suffix)->tp_name);
  }
  // "_" stands for each member: "_.a['k']" is parsed as one path; a
  // suffix that starts with a name is an attribute ('a.b' is '.a.b').
  const Py_UCS4 first = PyUnicode_GET_LENGTH(suffix) > 0
                            ? PyUnicode_READ_CHAR(suffix, 0)
                            : Py_UCS4{'.'};
  PyRef text = PyRef::Steal(PyUnicode_FromFormat(
      first == '.' || first == '[' ? "_%U" : "_.%U", suffix));
  if (!text) return nullptr;
  std::vector<Path> paths;
  const bool parsed = ParsePaths(text.get(), &paths);
  if (!parsed || paths.size() != 1 || paths[0].size() < 2) {
    if (parsed || PyErr_ExceptionMatches(PyExc_ValueError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_ValueError,
                   "maprox(expr): %R is not .attribute and [str or int "
                   "constant] steps (e.g. '.__class__.__name__', "
                   "\"['key'].attr\"): no target code runs",
                   suffix);
    }
    return nullptr;
  }
  Session* session = IdSetSession(idset);
  HeapView* view = ViewOf(session);
  const Names names;
  if (view == nullptr || !names.ok()) return nullptr;
  absl::StatusOr<KindedSet> set = view->Reach(
      SetOf(idset), [&](PyObject* member, std::vector<uintptr_t>* out) {
        std::string why;  // a member without it is left out, as Heapy's
        if (PyObject* v = FollowFrom(member, paths[0], names, &why)) {
          out->push_back(reinterpret_cast<uintptr_t>(v));
        }
      });
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(session, std::move(*set));
}

PyObject* HpIsoExpr(Session* session, PyObject* text) {
  std::vector<Path> paths;
  if (!ParsePaths(text, &paths)) return nullptr;
  HeapView* view = ViewOf(session);
  if (view == nullptr) return nullptr;
  const Names names;
  if (!names.ok()) return nullptr;
  std::string error;
  absl::StatusOr<KindedSet> set;
  {
    // One question: the objects read are alive while read, and their ids
    // are checked by the walk of the same GIL hold.
    heap::HeapEngine::Question question(view->engine());
    if (!question.status().ok()) {
      set = question.status();
    } else {
      std::vector<uintptr_t> ids;
      for (const Path& p : paths) {
        PyObject* obj = Follow(p, names, &error);
        if (obj == nullptr) break;
        ids.push_back(reinterpret_cast<uintptr_t>(obj));
      }
      if (error.empty()) set = view->FromAddresses(std::move(ids));
    }
  }
  if (!error.empty()) {
    PyErr_SetString(PyExc_ValueError, error.c_str());
    return nullptr;
  }
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(session, std::move(*set));
}

}  // namespace annex::glue::module
