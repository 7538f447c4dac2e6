// The kinds face of `hp`, classifiers as objects: annex.KindFactory
// (Heapy's equivalence relations hp.Type, hp.Clodo, hp.Size, ..., er & er,
// er.refdby, hp.Type.dictof, hp.Type.Dict and the other shorthands; called,
// one makes kinds through hp_kinds_makers.cc), the hp.X names that give
// them (HpKindFactory) and the classifier argument of x.by(er): a name
// such as 'Type&Size' (Classifier::Parse) or a classifier object (ErArg).
//
// Where: annex thread, GIL held, annex current.
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glue/classifiers.h"
#include "glue/module/hp_internal.h"
#include "glue/module/hp_kinds_internal.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"

namespace annex::glue::module {

namespace {

// A classifier as an object (Heapy's equivalence relation): hp.Type,
// hp.Size, hp.Type & hp.Size, hp.Type.dictof. Called, a single one makes
// kinds; x.by(er) partitions by it.
struct FactoryObject {
  PyObject_HEAD Session* session;
  // The classifier (one part, a combination such as hp.Type & hp.Size, or
  // a refdby over a base), owned, never null.
  Classifier* classifier;
  int variant;  // FactoryVariant
};

Session* FactorySession(PyObject* self) {
  return reinterpret_cast<FactoryObject*>(self)->session;
}
Classifier::Part FactoryPart(PyObject* self) {
  return FactoryClassifierOf(self).parts()[0];
}

}  // namespace

const Classifier& FactoryClassifierOf(PyObject* self) {
  return *reinterpret_cast<FactoryObject*>(self)->classifier;
}

// Heapy's repr of a classifier: hp.Type, hp.Clodo.refdby (hp.Rcs),
// hp.Type.refdby.refdby, (hp.Type & hp.Size), hp.Type.dictof.
std::string ErRepr(const Classifier& c) {
  if (c.parts().size() > 1) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < c.parts().size(); ++i) {
      parts.push_back(ErRepr(c.PartAt(i)));
    }
    return absl::StrCat("(", absl::StrJoin(parts, " & "), ")");
  }
  switch (c.parts()[0]) {
    case Classifier::kRcs:
      return "hp.Clodo.refdby";
    case Classifier::kRefdby:
      return ErRepr(*c.base(0)) + ".refdby";
    default:
      return "hp." + c.PartName(c.parts()[0]);
  }
}

namespace {

const Classifier* FactoryCombo(PyObject* self) {
  const Classifier& c = FactoryClassifierOf(self);
  return c.parts().size() > 1 ? &c : nullptr;
}
int FactoryVariantOf(PyObject* self) {
  return reinterpret_cast<FactoryObject*>(self)->variant;
}

}  // namespace

PyObject* FactoryCall(PyObject* self, PyObject* args, PyObject* kwds) {
  Session* session = FactorySession(self);
  const Classifier::Part part = FactoryPart(self);
  const Py_ssize_t nargs = PyTuple_GET_SIZE(args);
  const bool no_kwds = kwds == nullptr || PyDict_GET_SIZE(kwds) == 0;
  if (FactoryCombo(self) != nullptr) {
    PyErr_SetString(PyExc_TypeError,
                    "a combination of classifiers partitions (x.by(hp.Type "
                    "& hp.Size)) but makes no kind by itself: combine kinds "
                    "instead, e.g. hp.Type(dict) & hp.Size(64)");
    return nullptr;
  }
  if (FactoryVariantOf(self) == kDictOf) {
    if (nargs != 1 || !no_kwds) {
      PyErr_SetString(PyExc_TypeError,
                      "hp.Type.dictof() takes one owner: a type or its name, "
                      "a kind of class, () for dicts without owner, or None "
                      "for objects that are not dicts");
      return nullptr;
    }
    return MakeDictOf(session, PyTuple_GET_ITEM(args, 0));
  }
  if (FactoryVariantOf(self) == kIdset) {
    if (!no_kwds) {
      PyErr_SetString(PyExc_TypeError, "hp.Idset() takes ids or IdSets");
      return nullptr;
    }
    return MakeIdset(session, args);
  }
  switch (part) {
    case Classifier::kType:
      if (nargs != 1 || !no_kwds) {
        PyErr_SetString(PyExc_TypeError,
                        "hp.Type() takes one type or kind name, e.g. "
                        "hp.Type(dict) or hp.Type('__main__.Foo')");
        return nullptr;
      }
      return MakeType(session, PyTuple_GET_ITEM(args, 0));
    case Classifier::kClodo:
      return MakeClodo(session, args, kwds);
    case Classifier::kSize:
      if (nargs != 1 || !no_kwds) {
        PyErr_SetString(PyExc_TypeError, "hp.Size() takes one size in bytes");
        return nullptr;
      }
      return MakeSize(PyTuple_GET_ITEM(args, 0));
    case Classifier::kModule:
      return MakeModule(session, args, kwds);
    case Classifier::kVia:
      if (!no_kwds) break;
      return MakeVia(args);
    case Classifier::kRcs:
    case Classifier::kRefdby:
      if (!no_kwds) break;
      return MakeRefdby(session,
                        part == Classifier::kRcs
                            ? Classifier(Classifier::kClodo)
                            : *FactoryClassifierOf(self).base(0),
                        args);
    case Classifier::kUnity:
      if (nargs != 0 || !no_kwds) {
        PyErr_SetString(PyExc_TypeError,
                        "hp.Unity() takes no argument: its one kind is "
                        "hp.Anything");
        return nullptr;
      }
      return HpAnything();
    case Classifier::kId: {
      uintptr_t address = 0;
      if (nargs != 1 || !no_kwds) {
        PyErr_SetString(PyExc_TypeError,
                        "hp.Id() takes one address (id() in the target)");
        return nullptr;
      }
      if (!AddressArg(PyTuple_GET_ITEM(args, 0), "hp.Id()", &address)) {
        return nullptr;
      }
      return NewKind(IdAtom(address));
    }
    case Classifier::kProd:
      return MakeProd(args, kwds);
    default:
      break;
  }
  PyErr_SetString(PyExc_TypeError, "unexpected arguments");
  return nullptr;
}

PyObject* NewFactory(Session* session, const Classifier& c, int variant) {
  PyTypeObject* t = AnnexType(AnnexName::kKindFactory);
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  if (obj == nullptr) return nullptr;
  auto* f = reinterpret_cast<FactoryObject*>(obj);
  f->session = session;
  f->classifier = new Classifier(c);
  f->variant = variant;
  return obj;
}

namespace {

bool IsFactory(PyObject* o) { return IsAnnexType(o, AnnexName::kKindFactory); }

// The classifier a factory partitions by.
absl::StatusOr<Classifier> FactoryClassifier(PyObject* self) {
  return FactoryClassifierOf(self);
}

// er & er: Heapy's combined equivalence relation (hp.Type & hp.Size), the
// same as by('Type&Size'); a part given twice counts once.
PyObject* FactoryAnd(PyObject* a, PyObject* b) {
  if (!IsFactory(a) || !IsFactory(b)) Py_RETURN_NOTIMPLEMENTED;
  const Classifier c =
      Classifier::And(FactoryClassifierOf(a), FactoryClassifierOf(b));
  return NewFactory(FactorySession(a), c,
                    c.parts().size() == 1 ? FactoryVariantOf(a) : kPlain);
}

// hp.Type.Dict, hp.Type.Int, hp.Type.Code...: Heapy's shorthands, the
// `types` module's <Name>Type or else the builtin <name>.
// Called with the AttributeError of the plain lookup set (left set when
// the name is no shorthand either).
PyObject* TypeShorthand(PyObject* self, PyObject* name) {
  Py_ssize_t len = 0;
  const char* n = PyUnicode_AsUTF8AndSize(name, &len);
  if (n == nullptr || n[0] == '_' ||
      std::strlen(n) != static_cast<size_t>(len)) {
    return nullptr;
  }
  PyErr_Clear();
  PyRef type;
  PyRef types = PyRef::Steal(PyImport_ImportModule("types"));
  if (types) {
    type = PyRef::Steal(
        PyObject_GetAttrString(types.get(), absl::StrCat(n, "Type").c_str()));
  }
  if (!type) {
    PyErr_Clear();
    std::string lower = n;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    PyObject* builtins = PyEval_GetBuiltins();
    type = PyRef::NewRef(
        builtins ? PyDict_GetItemString(builtins, lower.c_str()) : nullptr);
  }
  if (!type || !PyType_Check(type.get())) {
    PyErr_Format(PyExc_AttributeError,
                 "hp.Type has no shorthand '%s' (types.%sType or a builtin "
                 "type named so)",
                 n, n);
    return nullptr;
  }
  return MakeType(FactorySession(self), type.get());
}

// er.refdby (every classifier: Heapy's, objects by their referrers' kinds
// under er; hp.Clodo.refdby is hp.Rcs), hp.Type.dictof (hp.Clodo.dictof
// is the same), and hp.Type's shorthands (hp.Type.Dict).
PyObject* FactoryGetattro(PyObject* self, PyObject* name) {
  PyObject* found = PyObject_GenericGetAttr(self, name);
  if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
    return found;
  }
  const char* n = PyUnicode_AsUTF8(name);
  if (n == nullptr) return nullptr;
  if (std::strcmp(n, "refdby") == 0) {
    PyErr_Clear();
    return NewFactory(FactorySession(self),
                      Classifier::Refdby(FactoryClassifierOf(self)), kPlain);
  }
  if (FactoryCombo(self) != nullptr || FactoryVariantOf(self) != kPlain) {
    return found;
  }
  const Classifier::Part part = FactoryPart(self);
  if (std::strcmp(n, "dictof") == 0) {
    if (part != Classifier::kType && part != Classifier::kClodo) {
      PyErr_Format(PyExc_AttributeError,
                   "%s.dictof: dictof is offered for hp.Type and hp.Clodo "
                   "(dicts by their owner's type)",
                   ErRepr(FactoryClassifierOf(self)).c_str());
      return nullptr;
    }
    PyErr_Clear();
    return NewFactory(FactorySession(self), Classifier(Classifier::kDictOf),
                      kDictOf);
  }
  if (part != Classifier::kType) return found;
  return TypeShorthand(self, name);
}

PyObject* FactoryRepr(PyObject* self) {
  if (FactoryVariantOf(self) == kIdset) return PyUnicode_FromString("hp.Idset");
  return PyUnicode_FromString(ErRepr(FactoryClassifierOf(self)).c_str());
}

PyObject* FactoryName(PyObject* self, void*) {
  if (FactoryVariantOf(self) == kIdset) return PyUnicode_FromString("Idset");
  return PyUnicode_FromString(FactoryClassifierOf(self).Name().c_str());
}

PyObject* FactoryRichCompare(PyObject* a, PyObject* b, int op) {
  if ((op != Py_EQ && op != Py_NE) || !IsFactory(b)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  const bool eq = FactoryClassifierOf(a) == FactoryClassifierOf(b) &&
                  FactoryVariantOf(a) == FactoryVariantOf(b);
  return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

Py_hash_t FactoryHash(PyObject* self) {
  PyRef r = PyRef::Steal(FactoryRepr(self));
  if (!r) return -1;
  return PyObject_Hash(r.get());
}

void FactoryClear(PyObject* self) {
  delete reinterpret_cast<FactoryObject*>(self)->classifier;
}

PyMethodDef kFactoryMethods[] = {
    {"sokind",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(FactorySokind)),
     METH_VARARGS | METH_KEYWORDS,
     "sokind(...) -> SoKind: a set of kinds of this classifier, made from "
     "the arguments of calling it (hp.Clodo.sokind(list)); called again it "
     "adds a kind (hp.Clodo.sokind(list)(dictof=())); its .refdby is the "
     "kind of this classifier's refdby (objects referred to by exactly "
     "those kinds)."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kFactoryGetSet[] = {
    {"name", FactoryName, nullptr,
     "the classifier's name as x.er and by() give it ('Type&Size')", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

const TypeDef& FactoryDef() {
  static const TypeDef* def = new TypeDef(
      "annex.KindFactory",
      "A classifier (Heapy's equivalence relation). Called, it makes "
      "kinds: hp.Type(dict), hp.Type.Dict, hp.Clodo(dictof=T), "
      "hp.Size(n), hp.Module(name=..., at=...), hp.Via(\"['k']\"), "
      "hp.Rcs(...), hp.Id(addr), hp.Prod(file, line), hp.Unity(), "
      "hp.Type.dictof(T); x.by(er) partitions by it; er & er combines "
      "(hp.Type & hp.Size).",
      sizeof(FactoryObject), AttributeTable(kFactoryGetSet, kFactoryMethods),
      {
          {Py_tp_call, reinterpret_cast<void*>(FactoryCall)},
          {Py_tp_getattro, reinterpret_cast<void*>(FactoryGetattro)},
          {Py_tp_richcompare, reinterpret_cast<void*>(FactoryRichCompare)},
          {Py_tp_hash, reinterpret_cast<void*>(FactoryHash)},
          {Py_tp_repr, reinterpret_cast<void*>(FactoryRepr)},
          {Py_nb_and, reinterpret_cast<void*>(FactoryAnd)},
      },
      InstanceDealloc<FactoryClear>);
  return *def;
}

PyObject* HpKindFactory(Session* session, const char* name) {
  const std::string n = name;
  if (n == "Idset") {
    return NewFactory(session, Classifier(Classifier::kId), kIdset);
  }
  static const Classifier::Part kParts[] = {
      Classifier::kType,   Classifier::kClodo, Classifier::kSize,
      Classifier::kModule, Classifier::kVia,   Classifier::kRcs,
      Classifier::kUnity,  Classifier::kId,    Classifier::kProd};
  for (Classifier::Part part : kParts) {
    if (n == Classifier::PartName(part)) {
      return NewFactory(session, Classifier(part), kPlain);
    }
  }
  return nullptr;
}

bool ErArg(PyObject* arg, const char* what, Classifier* out) {
  absl::StatusOr<Classifier> c;
  if (IsFactory(arg)) {
    c = FactoryClassifier(arg);
  } else if (PyUnicode_Check(arg)) {
    std::string name;
    if (!NameArg(arg, what, &name, /*allow_empty=*/true)) return false;
    c = Classifier::Parse(name);
  } else {
    PyErr_Format(PyExc_TypeError,
                 "%s: an equivalence relation name expected, e.g. 'Type', "
                 "'Clodo', 'Type&Size', or hp.Type, hp.Type & hp.Size",
                 what);
    return false;
  }
  if (!c.ok()) {
    RaiseStatus(c.status());
    return false;
  }
  *out = *c;
  return true;
}

}  // namespace annex::glue::module
