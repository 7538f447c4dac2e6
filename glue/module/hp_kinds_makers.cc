// The kinds face of `hp`, the kinds' constructors: what hp.Type(T),
// hp.Clodo(T or dictof=...), hp.Size(n), hp.Module(name=..., at=...),
// hp.Prod(file, line), hp.Via(...), hp.Id(addr), hp.Type.dictof(T),
// kind.dictof and hp.Idset(...) make (the classifier objects that call
// them: hp_kinds_classifiers.cc). Type names given as text are checked
// against the target's types (one walk, remembered by the session), with
// close names on a miss.
//
// Where: annex thread, GIL held, annex current, outside a heap question.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"
#include "glue/module/hp_kinds_internal.h"
#include "glue/module/py_ref.h"

namespace annex::glue::module {

namespace {

// Whether a type the target has (or a static type of the process) is
// named `name` as Heapy names types. Names of the annex's `builtins` and
// `types` modules are found at once, and so are the types the session's
// last walk met (HeapView::SawTypeName); any other name is looked for in
// one walk of the target's heap, among the types of the objects found and
// the type objects found (a class with no instance counts), which the
// session then remembers. false with
// ValueError naming the close names (difflib) when none is; the error of
// the walk (e.g. past hp.pause_limit) otherwise.
// Where: annex thread, GIL held, annex current, outside a question.
bool CheckTypeName(Session* session, const std::string& name,
                   const char* what) {
  HeapView* view = ViewOf(session);
  if (view == nullptr) return false;
  const TypeNamer& namer = view->namer();
  // The static types by their own names: "dict", "types.CodeType", ...
  auto in_module = [&](const char* module_name, const std::string& attr) {
    PyRef module = PyRef::Steal(PyImport_ImportModule(module_name));
    if (!module) {
      PyErr_Clear();
      return false;
    }
    PyRef t = PyRef::Steal(PyObject_GetAttrString(module.get(), attr.c_str()));
    if (!t) PyErr_Clear();
    return t && PyType_Check(t.get()) && namer.Name(t.type()) == name;
  };
  if (name.find('.') == std::string::npos && in_module("builtins", name)) {
    return true;
  }
  if (absl::StartsWith(name, "types.") && in_module("types", name.substr(6))) {
    return true;
  }
  // A type the session's last walk met (hp.heap() names every type of the
  // objects it finds): no walk.
  if (view->SawTypeName(name)) return true;
  // One walk: the types of every object reached, and the type objects,
  // named while the question holds the target (the types are alive). Only
  // C++ strings leave it: inside, the target's thread state is current, so
  // no Python object is made and no error set there.
  std::vector<std::string> names;
  absl::Status walked = ForEachHeapType(view, [&](PyTypeObject* t) {
    names.push_back(namer.Name(t));
    return false;
  });
  if (!walked.ok()) {
    RaiseStatus(walked);
    return false;
  }
  view->RememberTypeNames(
      absl::flat_hash_set<std::string>(names.begin(), names.end()));
  if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string hint;
  PyRef difflib = PyRef::Steal(PyImport_ImportModule("difflib"));
  PyRef all = PyRef::Steal(PyList_New(0));
  for (const std::string& n : names) {
    if (!all) break;
    ListAppendNew(all.get(),
                  PyUnicode_DecodeUTF8(n.data(), n.size(), "replace"));
  }
  PyRef close = PyRef::Steal(
      difflib && all
          ? PyObject_CallMethod(difflib.get(), "get_close_matches", "s#O",
                                name.data(),
                                static_cast<Py_ssize_t>(name.size()), all.get())
          : nullptr);
  if (close && PyList_Check(close.get()) && PyList_GET_SIZE(close.get()) > 0) {
    std::vector<std::string> shown;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(close.get()); ++i) {
      const char* c = PyUnicode_AsUTF8(PyList_GET_ITEM(close.get(), i));
      if (c != nullptr) shown.push_back(Quote(c));
    }
    hint = absl::StrCat("; did you mean ", absl::StrJoin(shown, ", "), "?");
  }
  PyErr_Clear();
  PyErr_Format(PyExc_ValueError,
               "%s: the target has no type named %s (no object of it and "
               "no class object of that name in its heap)%s Types are "
               "named as tables show them: 'module.Class', builtins by "
               "their name ('dict')",
               what, Quote(name).c_str(), hint.empty() ? "." : hint.c_str());
  return false;
}

}  // namespace

// The kind name of `arg` (a type, or a str taken as the name; with
// `check`, a name the target's types have: CheckTypeName).
// Where: annex thread, GIL held.
bool TypeName(Session* session, PyObject* arg, std::string* name,
              const char* check) {
  if (PyUnicode_Check(arg)) {
    if (!NameArg(arg, "kind name", name)) return false;
    return check == nullptr || CheckTypeName(session, *name, check);
  }
  if (PyType_Check(arg)) {
    HeapView* view = ViewOf(session);
    if (view == nullptr) return false;
    *name = view->namer().Name(reinterpret_cast<PyTypeObject*>(arg));
    return true;
  }
  PyErr_Format(PyExc_TypeError,
               "expected a type or a kind name (str), e.g. dict or "
               "'__main__.Foo'; got %s",
               Py_TYPE(arg)->tp_name);
  return false;
}

// The kinds of classes and of their dicts, one spelling each (Heapy's
// reprs, with names for its type addresses), so that every way to make
// one gives the same kind: hp.Clodo(T) is hp.Type(T), hp.Clodo(dictof=T)
// is hp.Type(T).dictof and hp.Type.dictof(T).
Expr TypeAtom(const std::string& name) {
  return Atom(Classifier(Classifier::kType), name,
              absl::StrCat("hp.Type(", Quote(name), ")"));
}
Expr DictOfAtom(const std::string& owner) {
  return Atom(Classifier(Classifier::kClodo), "dict of " + owner,
              absl::StrCat("hp.Type(", Quote(owner), ").dictof"));
}
Expr NoOwnerAtom() {
  return Atom(Classifier(Classifier::kClodo), kNoOwnerDict,
              "hp.Clodo(dictof=())");
}
// Heapy's notdict: everything that is not a dict.
Expr NotDictExpr() {
  auto e = std::make_shared<KindExpr>();
  e->op = KindExpr::kNot;
  e->a = TypeAtom("dict");
  return e;
}

PyObject* MakeType(Session* session, PyObject* arg) {
  std::string name;
  if (!TypeName(session, arg, &name, "hp.Type()")) return nullptr;
  return NewKind(TypeAtom(name));
}

PyObject* MakeClodo(Session* session, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"kind", "dictof", nullptr};
  PyObject* kind = nullptr;
  PyObject* dictof = nullptr;
  const char* usage =
      "hp.Clodo() takes either <type except dict>, dictof=<type> or "
      "dictof=()";
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO", const_cast<char**>(kw),
                                   &kind, &dictof)) {
    return nullptr;
  }
  Classifier clodo(Classifier::kClodo);
  if ((kind == nullptr) == (dictof == nullptr)) {
    PyErr_SetString(PyExc_TypeError, usage);
    return nullptr;
  }
  if (kind != nullptr) {
    if (kind == reinterpret_cast<PyObject*>(&PyDict_Type)) {
      PyErr_SetString(PyExc_TypeError,
                      "dict is not an equivalence class of Clodo, use "
                      "dictof=() etc");
      return nullptr;
    }
    // Heapy's Clodo kind of a class is that class's Type kind.
    std::string name;
    if (!TypeName(session, kind, &name, "hp.Clodo()")) return nullptr;
    return NewKind(TypeAtom(name));
  }
  if (PyTuple_Check(dictof) && PyTuple_GET_SIZE(dictof) == 0) {
    return NewKind(NoOwnerAtom());
  }
  std::string name;
  if (!TypeName(session, dictof, &name, "hp.Clodo(dictof=...)")) return nullptr;
  return NewKind(DictOfAtom(name));
}

PyObject* MakeSize(PyObject* arg) {
  unsigned long long n = PyLong_Check(arg) ? PyLong_AsUnsignedLongLong(arg) : 0;
  if (!PyLong_Check(arg) || PyErr_Occurred()) {
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError,
                    "hp.Size() takes a size in bytes (an int >= 0)");
    return nullptr;
  }
  auto e = std::make_shared<KindExpr>();
  e->classifier = Classifier(Classifier::kSize);
  e->size = n;
  e->label = RenderSize(n, false);
  e->repr = absl::StrCat("hp.Size(", n, ")");
  return NewKind(e);
}

// An address given by the user (an int > 0, as id() in the target gives).
bool AddressArg(PyObject* arg, const char* what, uintptr_t* out) {
  unsigned long long v = PyLong_Check(arg) ? PyLong_AsUnsignedLongLong(arg) : 0;
  if (!PyLong_Check(arg) || PyErr_Occurred() || v == 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "%s takes an address: an int > 0, as id() in the target "
                 "gives",
                 what);
    return false;
  }
  *out = static_cast<uintptr_t>(v);
  return true;
}

// The object at `address` as a kind (Heapy's Id kind).
Expr IdAtom(uintptr_t address) {
  auto e = std::make_shared<KindExpr>();
  e->classifier = Classifier(Classifier::kId);
  e->size = address;
  e->label = RenderId(address);
  e->repr = absl::StrCat("hp.Id(0x", absl::Hex(address), ")");
  return e;
}

PyObject* MakeModule(Session* session, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"name", "at", nullptr};
  PyObject* name = nullptr;
  PyObject* at = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO", const_cast<char**>(kw),
                                   &name, &at)) {
    return nullptr;
  }
  Classifier module(Classifier::kModule);
  if (name == nullptr && at == nullptr) {
    return NewKind(Atom(module, kNotModuleKind, "hp.Module()"));
  }
  Expr named;
  std::string repr;
  if (name != nullptr) {
    if (!PyUnicode_Check(name)) {
      PyErr_SetString(PyExc_TypeError, "hp.Module(name=...) takes a str");
      return nullptr;
    }
    std::string n;
    if (!NameArg(name, "hp.Module(name=...)", &n)) return nullptr;
    named = Atom(module, n, absl::StrCat("hp.Module(name=", Quote(n), ")"));
    repr = absl::StrCat("name=", Quote(n));
  }
  if (at == nullptr) return NewKind(named);
  // Heapy's at=: the module at that address (and of that name, when
  // given): a module object that is the object at `at`.
  uintptr_t address = 0;
  if (!AddressArg(at, "hp.Module(at=...)", &address)) return nullptr;
  if (named == nullptr) {
    HeapView* view = ViewOf(session);
    if (view == nullptr) return nullptr;
    named = Atom(Classifier(Classifier::kType),
                 view->namer().Name(&PyModule_Type), "hp.Type.Module");
  }
  auto e = std::make_shared<KindExpr>();
  e->op = KindExpr::kAnd;
  e->a = named;
  e->b = IdAtom(address);
  e->repr = absl::StrCat("hp.Module(", repr, repr.empty() ? "" : ", ", "at=0x",
                         absl::Hex(address), ")");
  return NewKind(e);
}

// hp.Prod(): objects with no known producer; hp.Prod(filename, lineno):
// those allocated at that line (as tables show it, 'file.py:12').
PyObject* MakeProd(PyObject* args, PyObject* kwds) {
  const Py_ssize_t nargs = PyTuple_GET_SIZE(args);
  Classifier prod(Classifier::kProd);
  if ((kwds == nullptr || PyDict_GET_SIZE(kwds) == 0) && nargs == 0) {
    return NewKind(Atom(prod, kUnknownProducer, "hp.Prod()"));
  }
  static const char* kw[] = {"filename", "lineno", nullptr};
  PyObject* file = nullptr;
  int line = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ui:Prod",
                                   const_cast<char**>(kw), &file, &line)) {
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError,
                    "hp.Prod() takes no argument (objects of unknown "
                    "producer) or a filename and a line number, e.g. "
                    "hp.Prod('/app/cache.py', 12)");
    return nullptr;
  }
  std::string f;
  if (!NameArg(file, "hp.Prod()", &f)) return nullptr;
  return NewKind(Atom(prod, absl::StrCat(f, ":", line),
                      absl::StrCat("hp.Prod(", Quote(f), ", ", line, ")")));
}

PyObject* MakeVia(PyObject* args) {
  std::vector<std::string> rels, reprs;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
    PyObject* a = PyTuple_GET_ITEM(args, i);
    if (!PyUnicode_Check(a)) {
      PyErr_SetString(PyExc_TypeError,
                      "hp.Via() takes edge names as str, e.g. "
                      "hp.Via(\"['key']\", '.attr', '[3]')");
      return nullptr;
    }
    std::string s;
    if (!NameArg(a, "hp.Via()", &s)) return nullptr;
    rels.push_back(s);
    reprs.push_back(Quote(s));
  }
  if (rels.empty()) {
    PyErr_SetString(PyExc_TypeError, "hp.Via() needs at least one edge name");
    return nullptr;
  }
  return NewKind(
      Atom(Classifier(Classifier::kVia), RenderVia(rels, false),
           absl::StrCat("hp.Via(", absl::StrJoin(reprs, ", "), ")")));
}

namespace {

// The kind `k` as the owner kind of dicts (kind.dictof): a Type kind or a
// Clodo kind of a class gives the Clodo kind of the dicts its objects own;
// a union gives the union of theirs. nullptr with TypeError for other
// kinds (the owner would have to be classified anew).
Expr DictOfExpr(const Expr& k) {
  if (k->op == KindExpr::kOr) {
    Expr a = DictOfExpr(k->a);
    if (a == nullptr) return nullptr;
    Expr b = DictOfExpr(k->b);
    if (b == nullptr) return nullptr;
    return Combine(KindExpr::kOr, a, b);
  }
  const bool class_kind = k->op == KindExpr::kAtom && !k->is_members() &&
                          k->cmp == "==" &&
                          (k->classifier.is(Classifier::kType) ||
                           (k->classifier.is(Classifier::kClodo) &&
                            !absl::StartsWith(k->label, "dict ")));
  if (!class_kind) {
    PyErr_Format(PyExc_TypeError,
                 "dictof: %s is not a kind of class; dictof is defined for "
                 "hp.Type(T), hp.Clodo(T) and their unions (|)",
                 k->Repr().c_str());
    return nullptr;
  }
  return DictOfAtom(k->label);
}

}  // namespace

PyObject* KindDictOf(PyObject* self, void*) {
  Expr e = DictOfExpr(ExprOf(self));
  return e == nullptr ? nullptr : NewKind(std::move(e));
}

PyObject* MakeDictOf(Session* session, PyObject* arg) {
  if (arg == Py_None) return NewKind(NotDictExpr());
  if (PyTuple_Check(arg) && PyTuple_GET_SIZE(arg) == 0) {
    return NewKind(NoOwnerAtom());
  }
  if (IsKind(arg)) return KindDictOf(arg, nullptr);
  std::string name;
  if (!TypeName(session, arg, &name, "hp.Type.dictof()")) return nullptr;
  return NewKind(DictOfAtom(name));
}

// hp.Idset(ids or IdSets...): Heapy's Idset called gives the set of those
// objects: here the live ones, as hp.iso does.
PyObject* MakeIdset(Session* session, PyObject* args) {
  std::vector<uintptr_t> addresses;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
    PyObject* a = PyTuple_GET_ITEM(args, i);
    if (PyLong_Check(a)) {
      uintptr_t address = 0;
      if (!AddressArg(a, "hp.Idset()", &address)) return nullptr;
      addresses.push_back(address);
      continue;
    }
    KindedSet* set = IdSetArg(a);
    if (set == nullptr) {
      PyErr_Clear();
      return PyErr_Format(PyExc_TypeError,
                          "hp.Idset() takes ids (ints, as id() in the target "
                          "gives) or IdSets, not %.100s",
                          Py_TYPE(a)->tp_name);
    }
    addresses.insert(addresses.end(), set->addresses.begin(),
                     set->addresses.end());
  }
  HeapView* view = ViewOf(session);
  if (view == nullptr) return nullptr;
  auto set = view->FromAddresses(std::move(addresses));
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(session, std::move(*set));
}

}  // namespace annex::glue::module
