// The kinds face of `hp`, sets of kinds: annex.SoKind (Heapy's
// er.sokind(...): kinds of one classifier, called again to add one) and
// the refdby kinds made of them (sokind.refdby, hp.X.refdby(...),
// hp.Rcs(...), a refdby row's x.kind): objects whose referrers' kinds
// under a base classifier are exactly those.
//
// Where: annex thread, GIL held, annex current.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glue/classifiers.h"
#include "glue/module/hp_internal.h"
#include "glue/module/hp_kinds_internal.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"

namespace annex::glue::module {

namespace {

// A set of kinds of one classifier (Heapy's er.sokind(...)): called, it
// adds a kind; .refdby is the kind of er.refdby of objects whose
// referrers' kinds are exactly these.
struct SoKindObject {
  PyObject_HEAD PyObject* er;        // the base classifier's annex.KindFactory
  std::vector<std::string>* labels;  // sorted, no repeats
};

// The argument that makes the kind of `base` shown as `label` (Heapy's
// userkindargrepr): hp.Clodo's 'T', dictof='T' or dictof=(); hp.Size's n.
std::string KindArgRepr(const Classifier& base, const std::string& label) {
  const bool no_owner = label == kNoOwnerDict;
  const bool dict_of = absl::StartsWith(label, "dict of ");
  if (base.is(Classifier::kClodo)) {
    if (no_owner) return "dictof=()";
    if (dict_of) return "dictof=" + Quote(label.substr(8));
  }
  if (base.is(Classifier::kDictOf)) {
    if (label == kNotDictKind) return "None";
    if (no_owner) return "()";
    if (dict_of) return Quote(label.substr(8));
  }
  if (base.is(Classifier::kSize)) {
    return std::string(absl::StripLeadingAsciiWhitespace(label));
  }
  if (base.is(Classifier::kVia)) return label;
  if (base.is(Classifier::kUnity)) return "";
  if (base.is(Classifier::kId) && absl::StartsWith(label, "<id ")) {
    return label.substr(4, label.size() - 5);
  }
  if (base.is(Classifier::kProd)) {
    const size_t colon = label.rfind(':');
    if (label == kUnknownProducer || colon == std::string::npos) return "";
    return absl::StrCat(Quote(label.substr(0, colon)), ", ",
                        label.substr(colon + 1));
  }
  return Quote(label);
}

// hp.X.sokind(a)(b): the kinds in label order, so one set has one repr.
std::string SoKindRepr(const Classifier& base,
                       const std::vector<std::string>& labels) {
  std::string out = ErRepr(base) + ".sokind";
  if (labels.empty()) out += "()";
  for (const std::string& l : labels) {
    absl::StrAppend(&out, "(", KindArgRepr(base, l), ")");
  }
  return out;
}

}  // namespace

// The kind of base.refdby: objects whose referrers' kinds under `base`
// are exactly `labels`; `label`, when given, is the kind's label as a
// table shows it (a row's, whose elements may hold ", " themselves).
Expr RefdbyAtom(const Classifier& base, std::vector<std::string> labels,
                const std::string* label) {
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  Expr e = Atom(Classifier::Refdby(base),
                label != nullptr ? *label : RenderRcs(labels, false),
                SoKindRepr(base, labels) + ".refdby");
  std::const_pointer_cast<KindExpr>(e)->elements = std::move(labels);
  return e;
}

namespace {

// The label of `kind`, a kind of `base` compared with '==' (for sokind and
// refdby). false with ValueError otherwise.
bool BaseKindLabel(const Classifier& base, PyObject* kind, std::string* out) {
  const KindExpr& e = *ExprOf(kind);
  if (base.is(Classifier::kDictOf) && e.op == KindExpr::kNot &&
      e.a->op == KindExpr::kAtom && e.a->classifier.is(Classifier::kType) &&
      e.a->label == "dict") {
    *out = kNotDictKind;
    return true;
  }
  bool fits = e.op == KindExpr::kAtom && !e.is_members() && e.cmp == "==";
  if (fits) {
    const Classifier& c = e.classifier;
    const bool dict_kind = c.is(Classifier::kClodo);
    fits = c == base ||
           (base.is(Classifier::kClodo) && c.is(Classifier::kType)) ||
           (base.is(Classifier::kDictOf) && dict_kind);
  }
  if (!fits) {
    PyErr_Format(PyExc_ValueError,
                 "%s is not a kind of %s (compared with '=='): sokind and "
                 "refdby take kinds of their base classifier",
                 e.Repr().c_str(), ErRepr(base).c_str());
    return false;
  }
  *out = e.label;
  return true;
}

bool IsSoKind(PyObject* o) { return IsAnnexType(o, AnnexName::kSoKind); }
SoKindObject* SoKindOf(PyObject* o) {
  return reinterpret_cast<SoKindObject*>(o);
}

PyObject* NewSoKind(PyObject* er, std::vector<std::string> labels);

}  // namespace

// hp.X.refdby(...) (and hp.Rcs(...)): the kind of objects whose referrers'
// kinds under X are exactly those given: SoKinds of X, kinds of X, or
// (X Clodo or Type) types or their names.
PyObject* MakeRefdby(Session* session, const Classifier& base, PyObject* args) {
  std::vector<std::string> labels;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
    PyObject* a = PyTuple_GET_ITEM(args, i);
    std::string label;
    if (IsSoKind(a)) {
      const Classifier& c = FactoryClassifierOf(SoKindOf(a)->er);
      if (!(c == base)) {
        PyErr_Format(PyExc_ValueError,
                     "expected a SoKind of %s, the argument is one of %s",
                     ErRepr(base).c_str(), ErRepr(c).c_str());
        return nullptr;
      }
      labels.insert(labels.end(), SoKindOf(a)->labels->begin(),
                    SoKindOf(a)->labels->end());
      continue;
    }
    if (IsKind(a)) {
      if (!BaseKindLabel(base, a, &label)) return nullptr;
    } else if (base.is(Classifier::kClodo) || base.is(Classifier::kType)) {
      if (!TypeName(session, a, &label)) return nullptr;
    } else {
      PyErr_Format(PyExc_TypeError,
                   "%s.refdby() takes SoKinds (%s.sokind(...)) or kinds of "
                   "%s, not %.100s",
                   ErRepr(base).c_str(), ErRepr(base).c_str(),
                   ErRepr(base).c_str(), Py_TYPE(a)->tp_name);
      return nullptr;
    }
    labels.push_back(label);
  }
  return NewKind(RefdbyAtom(base, std::move(labels)));
}

// er.sokind(...): Heapy's set of kinds of er, the arguments those of
// calling er; no argument: the empty set.
PyObject* FactorySokind(PyObject* self, PyObject* args, PyObject* kwds) {
  if (PyTuple_GET_SIZE(args) == 0 &&
      (kwds == nullptr || PyDict_GET_SIZE(kwds) == 0)) {
    return NewSoKind(self, {});
  }
  PyRef kind = PyRef::Steal(FactoryCall(self, args, kwds));
  if (!kind) return nullptr;
  if (!IsKind(kind.get())) {
    return PyErr_Format(PyExc_TypeError, "%s.sokind(): %s makes no kind",
                        ErRepr(FactoryClassifierOf(self)).c_str(),
                        ErRepr(FactoryClassifierOf(self)).c_str());
  }
  std::string label;
  if (!BaseKindLabel(FactoryClassifierOf(self), kind.get(), &label)) {
    return nullptr;
  }
  return NewSoKind(self, {label});
}

namespace {

PyObject* NewSoKind(PyObject* er, std::vector<std::string> labels) {
  PyTypeObject* t = AnnexType(AnnexName::kSoKind);
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  if (obj == nullptr) return nullptr;
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  SoKindOf(obj)->er = Py_NewRef(er);
  SoKindOf(obj)->labels = new std::vector<std::string>(std::move(labels));
  return obj;
}

void SoKindClear(PyObject* self) {
  Py_XDECREF(SoKindOf(self)->er);
  delete SoKindOf(self)->labels;
}

const Classifier& SoKindBase(PyObject* self) {
  return FactoryClassifierOf(SoKindOf(self)->er);
}

PyObject* SoKindObjRepr(PyObject* self) {
  return PyUnicode_FromString(
      SoKindRepr(SoKindBase(self), *SoKindOf(self)->labels).c_str());
}

// sok(...): the set with one more kind, made as er(...) makes it.
PyObject* SoKindCall(PyObject* self, PyObject* args, PyObject* kwds) {
  PyRef one = PyRef::Steal(FactorySokind(SoKindOf(self)->er, args, kwds));
  if (!one) return nullptr;
  std::vector<std::string> labels = *SoKindOf(self)->labels;
  const std::vector<std::string>& more = *SoKindOf(one.get())->labels;
  labels.insert(labels.end(), more.begin(), more.end());
  return NewSoKind(SoKindOf(self)->er, std::move(labels));
}

PyObject* SoKindRefdby(PyObject* self, void*) {
  return NewKind(RefdbyAtom(SoKindBase(self), *SoKindOf(self)->labels));
}

PyObject* SoKindEr(PyObject* self, void*) {
  return Py_NewRef(SoKindOf(self)->er);
}

PyObject* SoKindRichCompare(PyObject* a, PyObject* b, int op) {
  if ((op != Py_EQ && op != Py_NE) || !IsSoKind(b)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  const bool eq = SoKindBase(a) == SoKindBase(b) &&
                  *SoKindOf(a)->labels == *SoKindOf(b)->labels;
  return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

Py_hash_t SoKindHash(PyObject* self) {
  PyRef r = PyRef::Steal(SoKindObjRepr(self));
  if (!r) return -1;
  return PyObject_Hash(r.get());
}

PyGetSetDef kSoKindGetSet[] = {
    {"refdby", SoKindRefdby, nullptr,
     "the kind of er.refdby: objects whose referrers' kinds under er are "
     "exactly these",
     nullptr},
    {"er", SoKindEr, nullptr, "the classifier of the kinds", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

const TypeDef& SoKindDef() {
  static const TypeDef* def = new TypeDef(
      "annex.SoKind",
      "A set of kinds of one classifier (Heapy's er.sokind): "
      "call it to add a kind; .refdby is er.refdby's kind.",
      sizeof(SoKindObject), AttributeTable(kSoKindGetSet, nullptr),
      {
          {Py_tp_repr, reinterpret_cast<void*>(SoKindObjRepr)},
          {Py_tp_call, reinterpret_cast<void*>(SoKindCall)},
          {Py_tp_richcompare, reinterpret_cast<void*>(SoKindRichCompare)},
          {Py_tp_hash, reinterpret_cast<void*>(SoKindHash)},
      },
      InstanceDealloc<SoKindClear>);
  return *def;
}

}  // namespace annex::glue::module
