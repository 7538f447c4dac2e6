// The kinds face of `hp`: classifiers on sets (x.bytype, x.byclodo, ...,
// x.by('Type&Size')), partition rows (x[i], x[a:b], x.parts, x.kind,
// x.brief, x.theone), and kind objects (hp.Type(dict), hp.Clodo(...),
// hp.Size(n).alt('>='), hp.Module(name=...), hp.Via(...), hp.Rcs(...))
// with their algebra: h & kind, h - kind, ~kind, kind | kind, kind & kind.
//
// A kind is a predicate on objects, kept as a small expression tree of
// (classifier, kind name) atoms. `set & kind` classifies the set by each
// classifier the kind mentions (recorded data when it can, a re-walk for
// Module / Via / Rcs, where members that died drop out) and keeps the
// members that satisfy the expression.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/hp_internal.h"

namespace annex::glue::internal {
namespace {

// An owned reference to an annex object, safe to copy. Where: copied and
// destroyed with the GIL held on the annex thread (kinds live there).
class OwnedRef {
 public:
  OwnedRef() = default;
  explicit OwnedRef(PyObject* o) : o_(Py_XNewRef(o)) {}
  OwnedRef(const OwnedRef& other) : o_(Py_XNewRef(other.o_)) {}
  OwnedRef& operator=(const OwnedRef& other) {
    PyObject* old = o_;
    o_ = Py_XNewRef(other.o_);
    Py_XDECREF(old);
    return *this;
  }
  ~OwnedRef() { Py_XDECREF(o_); }
  PyObject* get() const { return o_; }

 private:
  PyObject* o_ = nullptr;
};

struct KindExpr {
  enum Op { kAtom, kNot, kAnd, kOr };
  Op op = kAtom;
  // Atom: members whose kind under `classifier` is `label`; for a Size
  // atom compared with `cmp` ("==", "!=", "<", "<=", ">", ">=") to `size`.
  Classifier classifier;
  std::string label;
  std::string cmp = "==";
  uint64_t size = 0;
  std::string repr;  // how the atom is written
  // A set as a kind (~x, x | kind): an atom whose members are those of
  // this annex.IdSet (held, so its identity watch stays), not a classifier's.
  OwnedRef members;
  std::shared_ptr<const KindExpr> a, b;

  bool is_members() const { return op == kAtom && members.get() != nullptr; }

  bool is_size() const {
    return op == kAtom && !is_members() && classifier.is(Classifier::kSize);
  }
  std::string Repr() const {
    switch (op) {
      case kAtom:
        return cmp == "==" || !is_size()
                   ? repr
                   : absl::StrCat(repr, ".alt('", cmp, "')");
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
  std::string Brief() const {
    if (op != kAtom || is_members()) return Repr();
    if (is_size()) {
      return cmp == "==" ? absl::StrCat("<size = ", size, ">")
                         : absl::StrCat("<size ", cmp, " ", size, ">");
    }
    return label;
  }
};
using Expr = std::shared_ptr<const KindExpr>;

struct KindObject {
  PyObject_HEAD Expr* expr;
};

struct FactoryObject {
  PyObject_HEAD Session* session;
  int part;  // Classifier::Part
};

PyTypeObject* ModuleType(const char* name) {
  PyObject* module = AnnexModule();
  if (module == nullptr) return nullptr;
  PyObject* type = PyObject_GetAttrString(module, name);
  Py_DECREF(module);
  return reinterpret_cast<PyTypeObject*>(type);
}

bool IsKind(PyObject* o) {
  PyTypeObject* t = ModuleType("Kind");
  if (t == nullptr) {
    PyErr_Clear();
    return false;
  }
  bool r = Py_TYPE(o) == t;
  Py_DECREF(t);
  return r;
}

const Expr& ExprOf(PyObject* o) {
  return *reinterpret_cast<KindObject*>(o)->expr;
}

PyObject* NewKind(Expr expr) {
  PyTypeObject* t = ModuleType("Kind");
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  Py_DECREF(t);
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
  e->members = OwnedRef(idset);
  e->label = "<members>";
  // Named by the set's address: kinds compare and hash by their text, and
  // two sets of the same size are different kinds.
  e->repr = absl::StrCat("<kind: the ", SetOf(idset).count(),
                         " members of IdSet at 0x",
                         absl::Hex(reinterpret_cast<uintptr_t>(idset)), ">");
  return e;
}

Expr Combine(KindExpr::Op op, Expr a, Expr b = nullptr) {
  auto e = std::make_shared<KindExpr>();
  e->op = op;
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

}  // namespace

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

namespace {

std::string PyRepr(PyObject* o) {
  PyObject* r = PyObject_Repr(o);
  if (r == nullptr) {
    PyErr_Clear();
    return "?";
  }
  const char* s = PyUnicode_AsUTF8(r);
  std::string out = s ? s : "?";
  Py_DECREF(r);
  return out;
}

std::string Quote(const std::string& s) {
  PyObject* u = PyUnicode_FromStringAndSize(s.data(), s.size());
  if (u == nullptr) {
    PyErr_Clear();
    return "'" + s + "'";
  }
  std::string r = PyRepr(u);
  Py_DECREF(u);
  return r;
}

// ---------------------------------------------------------------- filtering

// One classification of the (shrinking) base set.
struct Classified {
  Classifier classifier;
  KindedSet set;  // classified, sorted by address
};

void CollectAtoms(const Expr& e, std::vector<const KindExpr*>& atoms) {
  if (e == nullptr) return;
  if (e->op == KindExpr::kAtom) {
    atoms.push_back(e.get());
    return;
  }
  CollectAtoms(e->a, atoms);
  CollectAtoms(e->b, atoms);
}

bool CompareSize(uint64_t x, const std::string& cmp, uint64_t n) {
  if (cmp == "<") return x < n;
  if (cmp == "<=") return x <= n;
  if (cmp == ">") return x > n;
  if (cmp == ">=") return x >= n;
  if (cmp == "!=") return x != n;
  return x == n;
}

// The members of `set` of kind `expr`. Where: annex thread, GIL held,
// annex current (a re-walk for classifiers that need live objects).
absl::StatusOr<KindedSet> Filter(HeapView* view, const KindedSet& set,
                                 const Expr& expr) {
  std::vector<const KindExpr*> atoms;
  CollectAtoms(expr, atoms);
  // Classifiers that need live objects first: each may drop dead members.
  KindedSet base = set;
  std::vector<Classified> live;
  for (const KindExpr* atom : atoms) {
    if (atom->is_members() || !atom->classifier.NeedsLiveObjects()) continue;
    bool seen = false;
    for (const Classified& c : live) seen |= c.classifier == atom->classifier;
    if (seen) continue;
    absl::StatusOr<KindedSet> r = view->Classify(base, atom->classifier);
    if (!r.ok()) return r.status();
    base = *r;
    live.push_back({atom->classifier, std::move(*r)});
  }
  // Per atom: whether member i of base matches.
  const size_t n = base.count();
  std::vector<std::vector<char>> match(atoms.size());
  for (size_t k = 0; k < atoms.size(); ++k) {
    const KindExpr* atom = atoms[k];
    std::vector<char>& m = match[k];
    m.assign(n, 0);
    if (atom->is_members()) {
      // Membership by identity: the same address, and the kind's member is
      // still the object it saw (a new object at a dead member's address
      // is not a member).
      const KindedSet& members = SetOf(atom->members.get());
      // Both sorted by address: one merge pass.
      const size_t count = members.count();
      size_t j = 0;
      for (size_t i = 0; i < n; ++i) {
        const uintptr_t a = base.addresses[i];
        while (j < count && members.addresses[j] < a) ++j;
        m[i] = j < count && members.addresses[j] == a && SameObject(members, j);
      }
      continue;
    }
    if (atom->is_size()) {
      for (size_t i = 0; i < n; ++i) {
        m[i] = CompareSize(base.sizes[i], atom->cmp, atom->size);
      }
      continue;
    }
    const KindedSet* labelled = nullptr;
    KindedSet stored;
    for (const Classified& c : live) {
      if (c.classifier == atom->classifier) labelled = &c.set;
    }
    if (labelled == nullptr) {
      stored = base.WithStoredClassifier(atom->classifier);
      labelled = &stored;
    }
    const std::vector<std::string>& names = labelled->LabelNames();
    std::vector<char> label_matches(names.size());
    for (size_t l = 0; l < names.size(); ++l) {
      label_matches[l] = names[l] == atom->label;
    }
    // `labelled` is a superset of base, both ascending by address.
    size_t j = 0;
    for (size_t i = 0; i < n; ++i) {
      while (labelled->addresses[j] < base.addresses[i]) ++j;
      m[i] = label_matches[labelled->LabelOf(j)];
    }
  }
  // Evaluate the expression per member.
  struct Eval {
    const std::vector<const KindExpr*>& atoms;
    const std::vector<std::vector<char>>& match;
    bool operator()(const KindExpr* e, size_t i) const {
      switch (e->op) {
        case KindExpr::kAtom: {
          size_t k = std::find(atoms.begin(), atoms.end(), e) - atoms.begin();
          return match[k][i];
        }
        case KindExpr::kNot:
          return !(*this)(e->a.get(), i);
        case KindExpr::kAnd:
          return (*this)(e->a.get(), i) && (*this)(e->b.get(), i);
        case KindExpr::kOr:
          return (*this)(e->a.get(), i) || (*this)(e->b.get(), i);
      }
      return false;
    }
  } eval{atoms, match};
  std::vector<size_t> keep;
  for (size_t i = 0; i < n; ++i) {
    if (eval(expr.get(), i)) keep.push_back(i);
  }
  KindedSet out = base.Subset(keep);
  // A new set from an operation: partitioned by Clodo, as in Heapy.
  out.classifier = Classifier();
  out.labels = Labels();
  return out;
}

// ------------------------------------------------------------- Kind type

void KindDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  delete reinterpret_cast<KindObject*>(self)->expr;
  type->tp_free(self);
  Py_DECREF(type);
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
  PyObject* s = PyUnicode_FromString(ExprOf(self)->Repr().c_str());
  if (s == nullptr) return -1;
  Py_hash_t h = PyObject_Hash(s);
  Py_DECREF(s);
  return h;
}

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
  if (!e.is_size() || e.cmp != "==") {
    PyErr_SetString(PyExc_ValueError,
                    "alt() is supported on plain Size kinds, e.g. "
                    "hp.Size(64).alt('>=')");
    return nullptr;
  }
  auto alt = std::make_shared<KindExpr>(e);
  alt->cmp = cmp;
  return NewKind(alt);
}

PyObject* KindBrief(PyObject* self, void*) {
  return PyUnicode_FromString(ExprOf(self)->Brief().c_str());
}

PyMethodDef kKindMethods[] = {
    {"alt", KindAlt, METH_O,
     "alt(cmp) -> Kind: Size kinds compared with '<', '<=', '>', '>=', "
     "'!=' or '=='."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kKindGetSet[] = {
    {"brief", KindBrief, nullptr, "the kind as a table shows it", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot kKindSlots[] = {
    {Py_tp_doc,
     const_cast<char*>("A kind of target objects (Heapy's): select with "
                       "set & kind, set - kind; combine with ~, |, &.")},
    {Py_tp_dealloc, reinterpret_cast<void*>(KindDealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(KindRepr)},
    {Py_tp_hash, reinterpret_cast<void*>(KindHash)},
    {Py_tp_richcompare, reinterpret_cast<void*>(KindRichCompare)},
    {Py_tp_methods, kKindMethods},
    {Py_tp_getset, kKindGetSet},
    {Py_nb_invert, reinterpret_cast<void*>(KindInvert)},
    {Py_nb_or, reinterpret_cast<void*>(KindOr)},
    {Py_nb_and, reinterpret_cast<void*>(KindAnd)},
    {Py_nb_subtract, reinterpret_cast<void*>(KindSub)},
    {0, nullptr},
};

PyType_Spec kKindSpec = {"annex.Kind", sizeof(KindObject), 0,
                         Py_TPFLAGS_DEFAULT, kKindSlots};

// ------------------------------------------------------- factories (hp.X)

Session* FactorySession(PyObject* self) {
  return reinterpret_cast<FactoryObject*>(self)->session;
}
Classifier::Part FactoryPart(PyObject* self) {
  return static_cast<Classifier::Part>(
      reinterpret_cast<FactoryObject*>(self)->part);
}

// The kind name of `arg` (a type, or a str taken as the name).
// Where: annex thread, GIL held.
bool TypeName(Session* session, PyObject* arg, std::string* name) {
  if (PyUnicode_Check(arg)) return NameArg(arg, "kind name", name);
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

PyObject* MakeType(Session* session, PyObject* arg) {
  std::string name;
  if (!TypeName(session, arg, &name)) return nullptr;
  return NewKind(Atom(Classifier(Classifier::kType), name,
                      absl::StrCat("hp.Type(", Quote(name), ")")));
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
    std::string name;
    if (!TypeName(session, kind, &name)) return nullptr;
    return NewKind(
        Atom(clodo, name, absl::StrCat("hp.Clodo(", Quote(name), ")")));
  }
  if (PyTuple_Check(dictof) && PyTuple_GET_SIZE(dictof) == 0) {
    return NewKind(Atom(clodo, kNoOwnerDict, "hp.Clodo(dictof=())"));
  }
  std::string name;
  if (!TypeName(session, dictof, &name)) return nullptr;
  return NewKind(Atom(clodo, "dict of " + name,
                      absl::StrCat("hp.Clodo(dictof=", Quote(name), ")")));
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

PyObject* MakeModule(PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"name", nullptr};
  PyObject* name = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O", const_cast<char**>(kw),
                                   &name)) {
    return nullptr;
  }
  Classifier module(Classifier::kModule);
  if (name == nullptr)
    return NewKind(Atom(module, kNotModuleKind, "hp.Module()"));
  if (!PyUnicode_Check(name)) {
    PyErr_SetString(PyExc_TypeError, "hp.Module(name=...) takes a str");
    return nullptr;
  }
  std::string n;
  if (!NameArg(name, "hp.Module(name=...)", &n)) return nullptr;
  return NewKind(
      Atom(module, n, absl::StrCat("hp.Module(name=", Quote(n), ")")));
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

PyObject* MakeRcs(Session* session, PyObject* args) {
  std::vector<std::string> names, reprs;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
    PyObject* a = PyTuple_GET_ITEM(args, i);
    std::string name;
    if (IsKind(a)) {
      const KindExpr& e = *ExprOf(a);
      if (e.op != KindExpr::kAtom || e.cmp != "==" ||
          !(e.classifier.is(Classifier::kClodo) ||
            e.classifier.is(Classifier::kType))) {
        PyErr_SetString(PyExc_ValueError,
                        "hp.Rcs() takes Clodo or Type kinds (or their names)");
        return nullptr;
      }
      name = e.label;
    } else if (!TypeName(session, a, &name)) {
      return nullptr;
    }
    names.push_back(name);
    reprs.push_back(Quote(name));
  }
  return NewKind(
      Atom(Classifier(Classifier::kRcs), RenderRcs(names, false),
           absl::StrCat("hp.Rcs(", absl::StrJoin(reprs, ", "), ")")));
}

PyObject* FactoryCall(PyObject* self, PyObject* args, PyObject* kwds) {
  Session* session = FactorySession(self);
  const Classifier::Part part = FactoryPart(self);
  const Py_ssize_t nargs = PyTuple_GET_SIZE(args);
  const bool no_kwds = kwds == nullptr || PyDict_GET_SIZE(kwds) == 0;
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
      return MakeModule(args, kwds);
    case Classifier::kVia:
      if (!no_kwds) break;
      return MakeVia(args);
    case Classifier::kRcs:
      if (!no_kwds) break;
      return MakeRcs(session, args);
    default:
      break;
  }
  PyErr_SetString(PyExc_TypeError, "unexpected arguments");
  return nullptr;
}

// hp.Type.Dict, hp.Type.Int, hp.Type.Code...: Heapy's shorthands, the
// `types` module's <Name>Type or else the builtin <name>.
PyObject* FactoryGetattro(PyObject* self, PyObject* name) {
  PyObject* found = PyObject_GenericGetAttr(self, name);
  if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError) ||
      FactoryPart(self) != Classifier::kType) {
    return found;
  }
  Py_ssize_t len = 0;
  const char* n = PyUnicode_AsUTF8AndSize(name, &len);
  if (n == nullptr || n[0] == '_' ||
      std::strlen(n) != static_cast<size_t>(len)) {
    return nullptr;
  }
  PyErr_Clear();
  PyObject* type = nullptr;
  PyObject* types = PyImport_ImportModule("types");
  if (types != nullptr) {
    type = PyObject_GetAttrString(types, absl::StrCat(n, "Type").c_str());
    Py_DECREF(types);
  }
  if (type == nullptr) {
    PyErr_Clear();
    std::string lower = n;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    PyObject* builtins = PyEval_GetBuiltins();
    type = builtins ? PyDict_GetItemString(builtins, lower.c_str()) : nullptr;
    Py_XINCREF(type);
  }
  if (type == nullptr || !PyType_Check(type)) {
    Py_XDECREF(type);
    PyErr_Format(PyExc_AttributeError,
                 "hp.Type has no shorthand '%s' (types.%sType or a builtin "
                 "type named so)",
                 n, n);
    return nullptr;
  }
  PyObject* kind = MakeType(FactorySession(self), type);
  Py_DECREF(type);
  return kind;
}

PyObject* FactoryRepr(PyObject* self) {
  return PyUnicode_FromString(
      absl::StrCat("hp.", Classifier::PartName(FactoryPart(self))).c_str());
}

void FactoryDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyType_Slot kFactorySlots[] = {
    {Py_tp_doc,
     const_cast<char*>("Makes kinds of one classifier: hp.Type(dict), "
                       "hp.Type.Dict, hp.Clodo(dictof=T), hp.Size(n), "
                       "hp.Module(name=...), hp.Via(\"['k']\"), hp.Rcs(...).")},
    {Py_tp_dealloc, reinterpret_cast<void*>(FactoryDealloc)},
    {Py_tp_call, reinterpret_cast<void*>(FactoryCall)},
    {Py_tp_getattro, reinterpret_cast<void*>(FactoryGetattro)},
    {Py_tp_repr, reinterpret_cast<void*>(FactoryRepr)},
    {0, nullptr},
};

PyType_Spec kFactorySpec = {"annex.KindFactory", sizeof(FactoryObject), 0,
                            Py_TPFLAGS_DEFAULT, kFactorySlots};

// ------------------------------------------------------------ IdSet side

PyObject* Classified(PyObject* self, const Classifier& c) {
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  absl::StatusOr<KindedSet> r = view->Classify(SetOf(self), c);
  if (!r.ok()) return RaiseStatus(r.status());
  return NewIdSet(IdSetSession(self), std::move(*r));
}

PyObject* IdSetBy(PyObject* self, PyObject* arg) {
  absl::StatusOr<Classifier> c;
  PyTypeObject* factory = ModuleType("KindFactory");
  if (factory == nullptr) return nullptr;
  const bool is_factory = Py_TYPE(arg) == factory;
  Py_DECREF(factory);
  if (is_factory) {
    c = Classifier(FactoryPart(arg));
  } else if (PyUnicode_Check(arg)) {
    std::string name;
    if (!NameArg(arg, "by()", &name, /*allow_empty=*/true)) return nullptr;
    c = Classifier::Parse(name);
  } else {
    PyErr_SetString(PyExc_TypeError,
                    "by(): an equivalence relation name expected, e.g. "
                    "'Type', 'Clodo', 'Type&Size', or hp.Type");
    return nullptr;
  }
  if (!c.ok()) return RaiseStatus(c.status());
  return Classified(self, *c);
}

PyMethodDef kByMethod = {
    "by", IdSetBy, METH_O,
    "by(er) -> IdSet: the same set partitioned by er: 'Clodo', 'Type', "
    "'Size', 'Module', 'Id', 'Unity', 'Rcs', 'Via', 'Prod' or an '&' "
    "combination such as 'Type&Size'."};

std::string Brief(const KindedSet& set) {
  std::vector<KindedSet::Row> rows = set.Rows();
  std::vector<std::string> kinds;
  for (const auto& r : rows) kinds.push_back(r.kind);
  std::sort(kinds.begin(), kinds.end());
  std::string s = kinds.size() == 1
                      ? absl::StrCat("<", set.count(), " ", kinds[0], ">")
                      : absl::StrCat("<", set.count(), " (",
                                     absl::StrJoin(kinds, " | "), ")>");
  constexpr size_t kMax = 80;  // Heapy's max_summary_length
  if (s.size() > kMax) s = s.substr(0, kMax - 4) + "...>";
  return s;
}

}  // namespace

const char* const kIdSetKindsAttrs[] = {
    "by",     "byclodo", "bymodule", "byprod",  "byrcs",
    "bysize", "bytype",  "byunity",  "byvia",   "brief",
    "er",     "parts",   "theone",   "byidset", nullptr,
};

PyObject* IdSetKindsAttr(PyObject* self, const char* name) {
  const std::string n = name;
  struct ByName {
    const char* attr;
    Classifier::Part part;
  } by[] = {
      {"bytype", Classifier::kType},
      {"byclodo", Classifier::kClodo},
      {"bysize", Classifier::kSize},
      {"bymodule", Classifier::kModule},
      {"byunity", Classifier::kUnity},
      {"byrcs", Classifier::kRcs},
      {"byvia", Classifier::kVia},
      {"byprod", Classifier::kProd},
      // Heapy's byidset: one row per object (its kind a one-object set);
      // here its kind is the object's identity, as by('Id').
      {"byidset", Classifier::kId},
  };
  for (const ByName& b : by) {
    if (n == b.attr) return Classified(self, Classifier(b.part));
  }
  if (n == "by") return PyCFunction_New(&kByMethod, self);
  if (n == "er") {
    return PyUnicode_FromString(SetOf(self).classifier.Name().c_str());
  }
  if (n == "brief") return PyUnicode_FromString(Brief(SetOf(self)).c_str());
  if (n == "parts") {
    // One pass for all rows (a pass per row took 20.9 s for 834 rows of
    // 519 K objects).
    std::vector<KindedSet::Row> rows = SetOf(self).Rows();
    std::vector<uint32_t> labels;
    labels.reserve(rows.size());
    for (const auto& r : rows) labels.push_back(r.label);
    std::vector<KindedSet> parts = SetOf(self).SplitByLabels(labels);
    PyObject* list = PyList_New(0);
    if (list == nullptr) return nullptr;
    for (KindedSet& p : parts) {
      PyObject* part = NewIdSet(IdSetSession(self), std::move(p));
      if (part == nullptr || PyList_Append(list, part) < 0) {
        Py_XDECREF(part);
        Py_DECREF(list);
        return nullptr;
      }
      Py_DECREF(part);
    }
    return list;
  }
  if (n == "theone") {
    if (SetOf(self).count() != 1) {
      PyErr_SetString(PyExc_ValueError, "theone requires a singleton set");
      return nullptr;
    }
    HeapView* view = ViewOf(IdSetSession(self));
    if (view == nullptr) return nullptr;
    absl::StatusOr<std::string> text = view->ById(SetOf(self), 1);
    if (!text.ok()) return RaiseStatus(text.status());
    return NewText(*text);
  }
  return nullptr;
}

PyObject* IdSetKindOf(PyObject* self) {
  const KindedSet& set = SetOf(self);
  std::vector<KindedSet::Row> rows = set.Rows();
  if (rows.size() != 1) {
    PyErr_SetString(PyExc_ValueError, rows.empty()
                                          ? "an empty set has no kind"
                                          : "the set has more than one kind");
    return nullptr;
  }
  const Classifier& c = set.classifier;
  if (c.is(Classifier::kSize)) {
    auto e = std::make_shared<KindExpr>();
    e->classifier = c;
    e->size = set.sizes[0];
    e->label = rows[0].kind;
    e->repr = absl::StrCat("hp.Size(", e->size, ")");
    return NewKind(e);
  }
  std::string repr =
      c.parts().size() == 1 &&
              (c.is(Classifier::kType) || c.is(Classifier::kClodo))
          ? absl::StrCat("hp.", c.Name(), "(", Quote(rows[0].kind), ")")
          : absl::StrCat("<", c.Name(), " kind ", Quote(rows[0].kind), ">");
  if (c.is(Classifier::kClodo) && rows[0].kind.rfind("dict ", 0) == 0) {
    repr = rows[0].kind == kNoOwnerDict
               ? "hp.Clodo(dictof=())"
               : absl::StrCat("hp.Clodo(dictof=", Quote(rows[0].kind.substr(8)),
                              ")");
  }
  return NewKind(Atom(c, rows[0].kind, repr));
}

PyObject* KindsBinary(PyObject* a, PyObject* b, char op) {
  const bool ka = IsKind(a), kb = IsKind(b);
  if (ka == kb) Py_RETURN_NOTIMPLEMENTED;
  PyObject* set = ka ? b : a;
  PyObject* kind = ka ? a : b;
  PyTypeObject* idset = ModuleType("IdSet");
  if (idset == nullptr) return nullptr;
  const bool is_set = Py_TYPE(set) == idset;
  Py_DECREF(idset);
  if (!is_set) Py_RETURN_NOTIMPLEMENTED;
  Expr expr = ExprOf(kind);
  if (op == '|') {
    // Heapy's set | kind: a kind again (everything in the set or of the
    // kind), not a finite set.
    return NewKind(Combine(KindExpr::kOr, MembersAtom(set), expr));
  }
  if (op == '-' && ka) {
    // kind - set: a kind again (of the kind and not a member of the set).
    return NewKind(Combine(KindExpr::kAnd, expr,
                           Combine(KindExpr::kNot, MembersAtom(set))));
  }
  if (op == '-') {
    expr = Combine(KindExpr::kNot, expr);
  } else if (op != '&') {
    PyErr_SetString(PyExc_TypeError,
                    "set ^ kind is not defined; use set & kind, set - kind, "
                    "set | kind or kind - set (kinds)");
    return nullptr;
  }
  HeapView* view = ViewOf(IdSetSession(set));
  if (view == nullptr) return nullptr;
  absl::StatusOr<KindedSet> r = Filter(view, SetOf(set), expr);
  if (!r.ok()) return RaiseStatus(r.status());
  return NewIdSet(IdSetSession(set), std::move(*r));
}

PyObject* IdSetSubscript(PyObject* self, PyObject* key) {
  const KindedSet& set = SetOf(self);
  std::vector<KindedSet::Row> rows = set.Rows();
  const Py_ssize_t n = static_cast<Py_ssize_t>(rows.size());
  std::vector<uint32_t> labels;
  if (PySlice_Check(key)) {
    Py_ssize_t start, stop, step, len;
    if (PySlice_GetIndicesEx(key, n, &start, &stop, &step, &len) < 0) {
      return nullptr;
    }
    for (Py_ssize_t i = 0, r = start; i < len; ++i, r += step) {
      labels.push_back(rows[r].label);
    }
  } else if (PyIndex_Check(key)) {
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return nullptr;
    const Py_ssize_t asked = i;
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      // Rows can go: a kept set leaves out members that died since it was
      // made, so a row counted earlier may be gone now.
      if (set.dead > 0) {
        PyErr_Format(PyExc_IndexError,
                     "partition row %zd out of range: the set has %zd rows "
                     "now (%zu members died since it was made; x.dead)",
                     asked, n, set.dead);
      } else {
        PyErr_Format(PyExc_IndexError,
                     "partition row %zd out of range: the set has %zd rows",
                     asked, n);
      }
      return nullptr;
    }
    labels.push_back(rows[i].label);
  } else {
    PyErr_SetString(PyExc_TypeError,
                    "partition rows are indexed by int or slice");
    return nullptr;
  }
  std::sort(labels.begin(), labels.end());
  return NewIdSet(IdSetSession(self), set.OfLabels(labels));
}

PyObject* IdSetInvert(PyObject* self) {
  return NewKind(Combine(KindExpr::kNot, MembersAtom(self)));
}

PyObject* HpAnything() {
  return NewKind(
      Atom(Classifier(Classifier::kUnity), kUnityKind, "hp.Anything"));
}

int AddKindTypes(PyObject* module) {
  PyObject* kind = PyType_FromModuleAndSpec(module, &kKindSpec, nullptr);
  if (kind == nullptr) return -1;
  reinterpret_cast<PyTypeObject*>(kind)->tp_new = nullptr;
  if (PyModule_AddObject(module, "Kind", kind) < 0) {
    Py_DECREF(kind);
    return -1;
  }
  PyObject* factory = PyType_FromModuleAndSpec(module, &kFactorySpec, nullptr);
  if (factory == nullptr) return -1;
  reinterpret_cast<PyTypeObject*>(factory)->tp_new = nullptr;
  if (PyModule_AddObject(module, "KindFactory", factory) < 0) {
    Py_DECREF(factory);
    return -1;
  }
  return 0;
}

PyObject* HpKindFactory(Session* session, const char* name) {
  const std::string n = name;
  Classifier::Part part;
  if (n == "Type") {
    part = Classifier::kType;
  } else if (n == "Clodo") {
    part = Classifier::kClodo;
  } else if (n == "Size") {
    part = Classifier::kSize;
  } else if (n == "Module") {
    part = Classifier::kModule;
  } else if (n == "Via") {
    part = Classifier::kVia;
  } else if (n == "Rcs") {
    part = Classifier::kRcs;
  } else {
    return nullptr;
  }
  PyTypeObject* t = ModuleType("KindFactory");
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  Py_DECREF(t);
  if (obj == nullptr) return nullptr;
  reinterpret_cast<FactoryObject*>(obj)->session = session;
  reinterpret_cast<FactoryObject*>(obj)->part = part;
  return obj;
}

}  // namespace annex::glue::internal
