// The kinds face of `hp`, kind objects: annex.Kind (Heapy's kinds:
// hp.Type(dict), hp.Size(n).alt('>='), ...; made by hp_kinds_makers.cc)
// and their algebra: ~kind, kind | kind, kind & kind, kind - kind,
// kind.alt(cmp), repr and brief, == and hash; set & kind, set - kind and
// set | kind go to hp_kinds_sets.cc. Also the module's small helpers
// declared in hp_internal.h (NameArg, ReprText, ListAppendNew) and the
// kinds face's types added to the module (AddKindTypes). The pieces of the
// kinds face and what they share: hp_kinds_internal.h.
//
// A kind is a predicate on objects, kept as a small expression tree of
// (classifier, kind name) atoms. `set & kind` classifies the set by each
// classifier the kind mentions (recorded data when it can, a re-walk for
// Module / Via / Rcs, where members that died drop out) and keeps the
// members that satisfy the expression.
//
// Where: annex thread, GIL held, annex current (kinds live in the annex).
#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glue/classifiers.h"
#include "glue/module/hp_internal.h"
#include "glue/module/hp_kinds_internal.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"

namespace annex::glue::module {

std::string KindExpr::Repr() const {
  if (op != kAtom && !repr.empty()) return repr;  // named combination
  switch (op) {
    case kAtom:
      return cmp == "==" ? repr : absl::StrCat(repr, ".alt('", cmp, "')");
    case kNot:
      return a->op == kAtom ? "~" + a->Repr() : "~(" + a->Repr() + ")";
    case kAnd:
      return absl::StrCat("(", a->Repr(), " & ", b->Repr(), ")");
    case kOr:
      return absl::StrCat("(", a->Repr(), " | ", b->Repr(), ")");
  }
  return "";
}

// Heapy's brief: the kind as tables show it.
std::string KindExpr::Brief() const {
  if (op == kNot && a->op == kAtom && !a->is_members()) {
    // Heapy's: ~ before the kind's brief, in parentheses when it has
    // a space and none already.
    std::string n = a->Brief();
    if (n.find(' ') != std::string::npos && n[0] != '(' && n[0] != '<') {
      n = absl::StrCat("(", n, ")");
    }
    return "~" + n;
  }
  if (op != kAtom || is_members()) return Repr();
  if (is_size()) {
    return cmp == "==" ? absl::StrCat("<size = ", size, ">")
                       : absl::StrCat("<size ", cmp, " ", size, ">");
  }
  const bool rcs =
      classifier.is(Classifier::kRcs) || classifier.is(Classifier::kRefdby);
  if (rcs) {
    static const std::pair<const char*, const char*> kWords[] = {
        {"==", ""},
        {"<=", " at most"},
        {"<", " less than"},
        {">=", " at least"},
        {">", " more than"}};
    for (const auto& [c, w] : kWords) {
      if (cmp == c) return absl::StrCat("<referred by", w, ": ", label, ">");
    }
  }
  if (classifier.is(Classifier::kType) && cmp != "==") {
    static const std::pair<const char*, const char*> kWords[] = {
        {"<=", "subtype"},
        {"<", "strict subtype"},
        {">=", "supertype"},
        {">", "strict supertype"}};
    for (const auto& [c, w] : kWords) {
      if (cmp == c) return absl::StrCat("<", w, " of ", label, ">");
    }
  }
  if (classifier.is(Classifier::kVia)) {
    const std::string via = absl::StrCat("<via ", label, ">");
    return cmp == "==" ? via : absl::StrCat("[", cmp, " ", via, "]");
  }
  return label;
}

namespace {

// An annex.Kind: its expression, owned.
struct KindObject {
  PyObject_HEAD Expr* expr;
};

}  // namespace

bool IsKind(PyObject* o) { return IsAnnexType(o, AnnexName::kKind); }

const Expr& ExprOf(PyObject* o) {
  return *reinterpret_cast<KindObject*>(o)->expr;
}

PyObject* NewKind(Expr expr) {
  PyTypeObject* t = AnnexType(AnnexName::kKind);
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  if (obj == nullptr) return nullptr;
  reinterpret_cast<KindObject*>(obj)->expr = new Expr(std::move(expr));
  return obj;
}

Expr Atom(Classifier c, std::string label, std::string repr) {
  auto e = std::make_shared<KindExpr>();
  e->classifier = std::move(c);
  e->label = std::move(label);
  e->repr = std::move(repr);
  return e;
}

// The members of the annex.IdSet `idset` as a kind atom (held by it).
Expr MembersAtom(PyObject* idset) {
  auto e = std::make_shared<KindExpr>();
  e->members = PyRef::NewRef(idset);
  e->label = "<members>";
  // Named by the set's address: kinds compare and hash by their text, and
  // two sets of the same size are different kinds.
  e->repr = absl::StrCat("<kind: the ", SetOf(idset).count(),
                         " members of IdSet at 0x",
                         absl::Hex(reinterpret_cast<uintptr_t>(idset)), ">");
  return e;
}

Expr Combine(KindExpr::Op op, Expr a, Expr b) {
  auto e = std::make_shared<KindExpr>();
  e->op = op;
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

bool ListAppendNew(PyObject* list, PyObject* item) {
  PyRef owned = PyRef::Steal(item);
  return owned && PyList_Append(list, owned.get()) == 0;
}

std::string ReprText(PyObject* o) {
  PyRef r = PyRef::Steal(PyObject_Repr(o));
  const char* s = r ? PyUnicode_AsUTF8(r.get()) : nullptr;
  if (s == nullptr) {
    PyErr_Clear();
    return "?";
  }
  return s;
}

bool NameArg(PyObject* arg, const char* what, std::string* out,
             bool allow_empty) {
  if (!PyUnicode_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "%s: a name (str) expected, not %.100s", what,
                 Py_TYPE(arg)->tp_name);
    return false;
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(arg, &n);
  if (s == nullptr) return false;
  if (std::memchr(s, '\0', static_cast<size_t>(n)) != nullptr) {
    PyErr_Format(PyExc_ValueError,
                 "%s: the name %R holds a NUL character ('\\0'); names "
                 "never do",
                 what, arg);
    return false;
  }
  if (n == 0 && !allow_empty) {
    PyErr_Format(PyExc_ValueError, "%s: the name is empty", what);
    return false;
  }
  out->assign(s, static_cast<size_t>(n));
  return true;
}

std::string Quote(const std::string& s) {
  PyRef u = PyRef::Steal(PyUnicode_FromStringAndSize(s.data(), s.size()));
  if (!u) {
    PyErr_Clear();
    return "'" + s + "'";
  }
  return ReprText(u.get());
}

namespace {

// annex.Kind

void KindClear(PyObject* self) {
  delete reinterpret_cast<KindObject*>(self)->expr;
}

PyObject* KindRepr(PyObject* self) {
  return PyUnicode_FromString(ExprOf(self)->Repr().c_str());
}

PyObject* KindInvert(PyObject* self) {
  return NewKind(Combine(KindExpr::kNot, ExprOf(self)));
}

PyObject* KindOr(PyObject* a, PyObject* b) {
  if (!IsKind(a) || !IsKind(b)) {
    // set | kind, kind | set: a kind (Heapy's union of a set and a kind).
    if (IsKind(a) != IsKind(b)) return KindsBinary(a, b, '|');
    Py_RETURN_NOTIMPLEMENTED;
  }
  return NewKind(Combine(KindExpr::kOr, ExprOf(a), ExprOf(b)));
}

PyObject* KindAnd(PyObject* a, PyObject* b) {
  if (IsKind(a) && IsKind(b)) {
    return NewKind(Combine(KindExpr::kAnd, ExprOf(a), ExprOf(b)));
  }
  return KindsBinary(a, b, '&');
}

PyObject* KindSub(PyObject* a, PyObject* b) {
  if (IsKind(a) && IsKind(b)) {
    return NewKind(
        Combine(KindExpr::kAnd, ExprOf(a), Combine(KindExpr::kNot, ExprOf(b))));
  }
  return KindsBinary(a, b, '-');
}

PyObject* KindRichCompare(PyObject* a, PyObject* b, int op) {
  if (op != Py_EQ && op != Py_NE) Py_RETURN_NOTIMPLEMENTED;
  bool eq;
  if (IsKind(b)) {
    eq = ExprOf(a)->Repr() == ExprOf(b)->Repr();
  } else if (PyUnicode_Check(b)) {
    // kind == 'dict of module': the kind's name as a table shows it.
    const KindExpr& e = *ExprOf(a);
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(b, &n);
    if (s == nullptr) return nullptr;
    std::string label = e.label;
    label.erase(0, label.find_first_not_of(' '));
    eq = e.op == KindExpr::kAtom && e.cmp == "==" &&
         label == absl::string_view(s, static_cast<size_t>(n));
  } else {
    Py_RETURN_NOTIMPLEMENTED;
  }
  return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

Py_hash_t KindHash(PyObject* self) {
  PyRef s = PyRef::Steal(PyUnicode_FromString(ExprOf(self)->Repr().c_str()));
  if (!s) return -1;
  return PyObject_Hash(s.get());
}

// kind.alt(cmp), Heapy's: '==' is the kind itself and '!=' its complement
// (~kind), for every kind; '<', '<=', '>', '>=' order Size kinds by size,
// Type kinds (and Clodo kinds of classes, which are Type kinds) by
// subtype, and Rcs, refdby and Via kinds by inclusion of their sets.
PyObject* KindAlt(PyObject* self, PyObject* arg) {
  const KindExpr& e = *ExprOf(self);
  if (!PyUnicode_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "alt() takes a comparison string");
    return nullptr;
  }
  std::string cmp;
  if (!NameArg(arg, "alt()", &cmp)) return nullptr;
  static const char* const kCmps[] = {"<", "<=", "==", "!=", ">", ">="};
  if (std::find(std::begin(kCmps), std::end(kCmps), cmp) == std::end(kCmps)) {
    PyErr_Format(PyExc_ValueError, "No such comparison symbol: %R", arg);
    return nullptr;
  }
  if (cmp == "==") return Py_NewRef(self);
  if (cmp == "!=") return KindInvert(self);
  const bool ordered = e.op == KindExpr::kAtom && !e.is_members() &&
                       (e.classifier.is(Classifier::kSize) ||
                        e.classifier.is(Classifier::kType) ||
                        e.classifier.is(Classifier::kRcs) ||
                        e.classifier.is(Classifier::kRefdby) ||
                        e.classifier.is(Classifier::kVia));
  if (ordered && e.cmp == "==") {
    auto alt = std::make_shared<KindExpr>(e);
    alt->cmp = cmp;
    return NewKind(alt);
  }
  if (ordered) {
    PyErr_Format(PyExc_ValueError,
                 "alt(%R): %s already compares ('%s'); alt() takes a kind "
                 "compared with '=='",
                 arg, e.Repr().c_str(), e.cmp.c_str());
    return nullptr;
  }
  PyErr_Format(PyExc_ValueError,
               "alt(%R): %s has no order. Orders ('<', '<=', '>', '>=') are "
               "defined on Size kinds (by size), Type kinds and Clodo kinds "
               "of classes (by subtype), and Rcs, refdby and Via kinds (by "
               "inclusion); every kind has alt('==') (itself) and alt('!=') "
               "(~kind)",
               arg, e.Repr().c_str());
  return nullptr;
}

PyObject* KindBrief(PyObject* self, void*) {
  return PyUnicode_FromString(ExprOf(self)->Brief().c_str());
}

// str(kind), print(kind): the brief, as Heapy's.
PyObject* KindStr(PyObject* self) { return KindBrief(self, nullptr); }

PyMethodDef kKindMethods[] = {
    {"alt", KindAlt, METH_O,
     "alt(cmp) -> Kind: '==' the kind, '!=' its complement; '<', '<=', "
     "'>', '>=' order Size kinds by size, Type kinds by subtype, Rcs, "
     "refdby and Via kinds by inclusion."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kKindGetSet[] = {
    {"brief", KindBrief, nullptr, "the kind as a table shows it", nullptr},
    {"dictof", KindDictOf, nullptr,
     "the dicts owned (as __dict__) by objects of this kind of class "
     "(hp.Type(T).dictof is hp.Clodo(dictof=T))",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

const TypeDef& KindDef() {
  static const TypeDef* def = new TypeDef(
      "annex.Kind",
      "A kind of target objects (Heapy's): select with "
      "set & kind, set - kind; combine with ~, |, &.",
      sizeof(KindObject), AttributeTable(kKindGetSet, kKindMethods),
      {
          {Py_tp_repr, reinterpret_cast<void*>(KindRepr)},
          {Py_tp_str, reinterpret_cast<void*>(KindStr)},
          {Py_tp_hash, reinterpret_cast<void*>(KindHash)},
          {Py_tp_richcompare, reinterpret_cast<void*>(KindRichCompare)},
          {Py_nb_invert, reinterpret_cast<void*>(KindInvert)},
          {Py_nb_or, reinterpret_cast<void*>(KindOr)},
          {Py_nb_and, reinterpret_cast<void*>(KindAnd)},
          {Py_nb_subtract, reinterpret_cast<void*>(KindSub)},
      },
      InstanceDealloc<KindClear>);
  return *def;
}

}  // namespace

PyObject* HpAnything() {
  return NewKind(
      Atom(Classifier(Classifier::kUnity), kUnityKind, "hp.Anything"));
}

int AddKindTypes(PyObject* module) {
  if (KindDef().AddTo(module, "Kind") == nullptr ||
      FactoryDef().AddTo(module, "KindFactory") == nullptr ||
      SoKindDef().AddTo(module, "SoKind") == nullptr) {
    return -1;
  }
  // x.partition (hp_partition.cc).
  return AddPartitionTypes(module);
}

bool IsKindObject(PyObject* o) { return IsKind(o); }

}  // namespace annex::glue::module
