// The kinds face of `hp`: classifiers on sets (x.bytype, x.byclodo, ...,
// x.by('Type&Size')), partition rows (x[i], x[a:b], x.parts, x.kind,
// x.brief, x.theone), classifiers as objects (Heapy's equivalence
// relations: hp.Type, hp.Type & hp.Size, hp.Type.dictof, er.refdby on
// every classifier, er.sokind(...) as annex.SoKind) and kind objects
// (hp.Type(dict), hp.Clodo(...), hp.Size(n).alt('>='), hp.Type(T).alt('<'),
// hp.Module(name=..., at=...), hp.Via(...), hp.Rcs(...), hp.Id(addr),
// hp.Prod(file, line), kind.dictof, sokind.refdby) with their algebra:
// h & kind, h - kind, ~kind, kind | kind, kind & kind. Type names given as text
// are checked against the target's types (one walk), with close names on a
// miss.
//
// A kind is a predicate on objects, kept as a small expression tree of
// (classifier, kind name) atoms. `set & kind` classifies the set by each
// classifier the kind mentions (recorded data when it can, a re-walk for
// Module / Via / Rcs, where members that died drop out) and keeps the
// members that satisfy the expression.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"

namespace annex::glue::module {
namespace {

struct KindExpr {
  enum Op { kAtom, kNot, kAnd, kOr };
  KindExpr() = default;
  // A copy (x.alt(cmp) of an atom) holds its own reference to `members`.
  KindExpr(const KindExpr& o)
      : op(o.op),
        classifier(o.classifier),
        label(o.label),
        cmp(o.cmp),
        size(o.size),
        repr(o.repr),
        elements(o.elements),
        members(PyRef::NewRef(o.members.get())),
        a(o.a),
        b(o.b) {}
  KindExpr& operator=(const KindExpr&) = delete;

  Op op = kAtom;
  // Atom: members whose kind under `classifier` is `label`; for a Size
  // atom compared with `cmp` ("==", "!=", "<", "<=", ">", ">=") to `size`.
  Classifier classifier;
  std::string label;
  std::string cmp = "==";
  uint64_t size = 0;
  std::string repr;  // how the atom is written
  // Rcs, refdby and Via atoms: the set's elements as the base classifier
  // renders them (for the inclusion orders); a Type atom ordered '>=' or
  // '>': the names of the type's MRO.
  std::vector<std::string> elements;
  // A set as a kind (~x, x | kind): an atom whose members are those of
  // this annex.IdSet (held, so its identity watch stays), not a classifier's.
  PyRef members;  // released on the annex thread, GIL held (kinds live there)
  std::shared_ptr<const KindExpr> a, b;

  bool is_members() const { return op == kAtom && members.get() != nullptr; }

  bool is_size() const {
    return op == kAtom && !is_members() && classifier.is(Classifier::kSize);
  }
  std::string Repr() const {
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
  std::string Brief() const {
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
};
using Expr = std::shared_ptr<const KindExpr>;

struct KindObject {
  PyObject_HEAD Expr* expr;
};

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

// A set of kinds of one classifier (Heapy's er.sokind(...)): called, it
// adds a kind; .refdby is the kind of er.refdby of objects whose
// referrers' kinds are exactly these.
struct SoKindObject {
  PyObject_HEAD PyObject* er;        // the base classifier's annex.KindFactory
  std::vector<std::string>* labels;  // sorted, no repeats
};

enum FactoryVariant {
  kPlain = 0,
  // hp.Type.dictof: kinds of dicts by their owner's type (Heapy's
  // ByDictOwner over Type); the classifier is Type.dictof.
  kDictOf = 1,
  // hp.Idset: Heapy's identity-set relation; partitions as Id, and called
  // it gives the set of those objects (an IdSet), as Heapy's.
  kIdset = 2,
};

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

Expr Combine(KindExpr::Op op, Expr a, Expr b = nullptr) {
  auto e = std::make_shared<KindExpr>();
  e->op = op;
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

}  // namespace

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

namespace {

std::string Quote(const std::string& s) {
  PyRef u = PyRef::Steal(PyUnicode_FromStringAndSize(s.data(), s.size()));
  if (!u) {
    PyErr_Clear();
    return "'" + s + "'";
  }
  return ReprText(u.get());
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

// The classifier whose labels decide an atom: a Type atom ordered '<='
// or '<' reads each member's MRO (live), any other its own classifier.
Classifier AtomClassifier(const KindExpr* atom) {
  if (atom->classifier.is(Classifier::kType) &&
      (atom->cmp == "<=" || atom->cmp == "<")) {
    return Classifier(Classifier::kMro);
  }
  return atom->classifier;
}

// Whether a member whose label (under AtomClassifier(atom)) is `name`
// is of the kind `atom` (not a Size, Id or members atom).
// `elements`: atom->elements, or for a Type atom ordered '>=' or '>' the
// names of its type's MRO.
bool LabelMatches(const KindExpr* atom, const std::string& name,
                  const std::vector<std::string>& elements) {
  const std::string& cmp = atom->cmp;
  if (cmp == "==") return name == atom->label;
  if (atom->classifier.is(Classifier::kType)) {
    if (cmp == "<=" || cmp == "<") {
      // `name`: the member's type's MRO, its own type first.
      const std::vector<absl::string_view> mro = absl::StrSplit(name, '\n');
      const bool sub =
          std::find(mro.begin(), mro.end(), atom->label) != mro.end();
      return sub && (cmp == "<=" || mro[0] != atom->label);
    }
    // '>=', '>': the member's type is in the kind's type's MRO.
    const bool super =
        std::find(elements.begin(), elements.end(), name) != elements.end();
    return super && (cmp == ">=" || name != atom->label);
  }
  // Rcs, refdby and Via: inclusion of sets.
  const bool within = cmp == "<=" || cmp == "<";
  const bool strict = cmp == "<" || cmp == ">";
  return RcsLabelCompare(name, elements, within) &&
         !(strict && name == atom->label);
}

bool CompareSize(uint64_t x, const std::string& cmp, uint64_t n) {
  if (cmp == "<") return x < n;
  if (cmp == "<=") return x <= n;
  if (cmp == ">") return x > n;
  if (cmp == ">=") return x >= n;
  if (cmp == "!=") return x != n;
  return x == n;
}

// Calls `each` once for every type the target's heap has now (the types
// of the objects reached and the type objects reached), in one walk,
// until it returns true. `each` runs inside the question, with the target
// current: it must make no Python object and set no error (read the types
// and keep C++ data). Where: annex thread, GIL held, annex current,
// outside a question.
absl::Status ForEachHeapType(HeapView* view,
                             const std::function<bool(PyTypeObject*)>& each) {
  heap::HeapEngine::Question question(view->engine());
  if (!question.status().ok()) return question.status();
  absl::Status s = view->CheckQuestionMemory(nullptr, HeapView::Work::kWalk,
                                             /*edges=*/false);
  if (!s.ok()) return s;
  absl::StatusOr<heap::HeapGraph> graph =
      view->engine().Graph(heap::GraphOptions::NodesOnly());
  if (!graph.ok()) return graph.status();
  absl::flat_hash_set<PyTypeObject*> seen;
  for (uintptr_t a : graph->addresses) {
    PyObject* o = reinterpret_cast<PyObject*>(a);
    PyTypeObject* types[2] = {Py_TYPE(o), nullptr};
    if (PyType_Check(o)) types[1] = reinterpret_cast<PyTypeObject*>(o);
    for (PyTypeObject* t : types) {
      if (t != nullptr && seen.insert(t).second && each(t)) {
        return absl::OkStatus();
      }
    }
  }
  return absl::OkStatus();
}

// The MRO names of the type the target has named `name` (one walk), or
// none when it has none now. Where: as ForEachHeapType.
absl::Status TypeMroByName(HeapView* view, const std::string& name,
                           std::vector<std::string>* out) {
  out->clear();
  return ForEachHeapType(view, [&](PyTypeObject* t) {
    if (view->namer().Name(t) != name) return false;
    *out = MroNames(view->namer(), t);
    return true;
  });
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
    if (atom->is_members()) continue;
    const Classifier c = AtomClassifier(atom);
    if (!c.NeedsLiveObjects()) continue;
    bool seen = false;
    for (const Classified& l : live) seen |= l.classifier == c;
    if (seen) continue;
    absl::StatusOr<KindedSet> r = view->Classify(base, c);
    if (!r.ok()) return r.status();
    base = *r;
    live.push_back({c, std::move(*r)});
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
    if (atom->classifier.is(Classifier::kId)) {
      // hp.Id(address): the member at that address (`size` holds it).
      for (size_t i = 0; i < n; ++i) m[i] = base.addresses[i] == atom->size;
      continue;
    }
    std::vector<std::string> elements = atom->elements;
    if (atom->classifier.is(Classifier::kType) &&
        (atom->cmp == ">=" || atom->cmp == ">")) {
      // The kind's type's MRO, from the target as it is now.
      absl::Status s = TypeMroByName(view, atom->label, &elements);
      if (!s.ok()) return s;
    }
    const KindedSet* labelled = nullptr;
    KindedSet stored;
    const Classifier atom_classifier = AtomClassifier(atom);
    for (const Classified& c : live) {
      if (c.classifier == atom_classifier) labelled = &c.set;
    }
    if (labelled == nullptr) {
      stored = base.WithStoredClassifier(atom_classifier);
      labelled = &stored;
    }
    const std::vector<std::string>& names = labelled->LabelNames();
    std::vector<char> label_matches(names.size());
    for (size_t l = 0; l < names.size(); ++l) {
      label_matches[l] = LabelMatches(atom, names[l], elements);
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

PyObject* KindDictOf(PyObject* self, void*);

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

// ------------------------------------------------------- factories (hp.X)

Session* FactorySession(PyObject* self) {
  return reinterpret_cast<FactoryObject*>(self)->session;
}
const Classifier& FactoryClassifierOf(PyObject* self) {
  return *reinterpret_cast<FactoryObject*>(self)->classifier;
}
Classifier::Part FactoryPart(PyObject* self) {
  return FactoryClassifierOf(self).parts()[0];
}

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

// The kind name of `arg` (a type, or a str taken as the name; with
// `check`, a name the target's types have: CheckTypeName).
// Where: annex thread, GIL held.
bool TypeName(Session* session, PyObject* arg, std::string* name,
              const char* check = nullptr) {
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

// hp.Type.dictof(T): the dicts owned by an object of type T (T a type, a
// name, or a Type / Clodo kind of a class); () or hp.Nothing: dicts
// without owner; None: objects that are not dicts (Heapy's notdict).
PyObject* MakeDictOf(Session* session, PyObject* arg);

PyObject* KindDictOf(PyObject* self, void*);

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

// The kind of base.refdby: objects whose referrers' kinds under `base`
// are exactly `labels`; `label`, when given, is the kind's label as a
// table shows it (a row's, whose elements may hold ", " themselves).
Expr RefdbyAtom(const Classifier& base, std::vector<std::string> labels,
                const std::string* label = nullptr) {
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  Expr e = Atom(Classifier::Refdby(base),
                label != nullptr ? *label : RenderRcs(labels, false),
                SoKindRepr(base, labels) + ".refdby");
  std::const_pointer_cast<KindExpr>(e)->elements = std::move(labels);
  return e;
}

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

const Classifier* FactoryCombo(PyObject* self) {
  const Classifier& c = FactoryClassifierOf(self);
  return c.parts().size() > 1 ? &c : nullptr;
}
int FactoryVariantOf(PyObject* self) {
  return reinterpret_cast<FactoryObject*>(self)->variant;
}

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

PyObject* NewSoKind(PyObject* er, std::vector<std::string> labels);

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

// --------------------------------------------------------- SoKind type

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

// ------------------------------------------------------------ IdSet side

PyObject* Classified(PyObject* self, const Classifier& c) {
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  absl::StatusOr<KindedSet> r = view->Classify(SetOf(self), c);
  if (!r.ok()) return RaiseStatus(r.status());
  return NewIdSet(IdSetSession(self), std::move(*r));
}

PyObject* IdSetBy(PyObject* self, PyObject* arg) {
  Classifier c;
  if (!ErArg(arg, "by()", &c)) return nullptr;
  return Classified(self, c);
}

PyMethodDef kByMethod = {
    "by", IdSetBy, METH_O,
    "by(er) -> IdSet: the same set partitioned by er: 'Clodo', 'Type', "
    "'Size', 'Module', 'Id', 'Unity', 'Rcs', 'Via', 'Prod' or an '&' "
    "combination such as 'Type&Size'."};

}  // namespace

namespace {

void* PartClosure(Classifier::Part part) {
  return reinterpret_cast<void*>(static_cast<intptr_t>(part));
}

// x.bytype, x.byclodo, ...: the set partitioned by the classifier part in
// `closure`.
PyObject* ByPartGet(PyObject* self, void* closure) {
  return Classified(self, Classifier(static_cast<Classifier::Part>(
                              reinterpret_cast<intptr_t>(closure))));
}

PyObject* PartitionGet(PyObject* self, void*) { return IdSetPartition(self); }

// Heapy's er: the classifier object (hp.Clodo, (hp.Type & hp.Size)).
PyObject* ErGet(PyObject* self, void*) {
  const Classifier& c = SetOf(self).classifier;
  return NewFactory(IdSetSession(self), c,
                    c.is(Classifier::kDictOf) ? kDictOf : kPlain);
}

PyObject* PartsGet(PyObject* self, void*) {
  // One pass for all rows (a pass per row took 20.9 s for 834 rows of
  // 519 K objects).
  std::vector<KindedSet::Row> rows = SetOf(self).Rows();
  std::vector<uint32_t> labels;
  labels.reserve(rows.size());
  for (const auto& r : rows) labels.push_back(r.label);
  std::vector<KindedSet> parts = SetOf(self).SplitByLabels(labels);
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (KindedSet& p : parts) {
    if (!ListAppendNew(list.get(),
                       NewIdSet(IdSetSession(self), std::move(p)))) {
      return nullptr;
    }
  }
  return list.release();
}

}  // namespace

AttributeTable KindsAttributes() {
  AttributeTable t;
  auto by = [&t](const char* name, Classifier::Part part, const char* doc) {
    t.getsets.push_back({name, ByPartGet, nullptr, doc, PartClosure(part)});
  };
  by("byclodo", Classifier::kClodo,
     "the set partitioned by Clodo: class, or dict of its owner's class "
     "(Heapy's default)");
  by("bytype", Classifier::kType, "the set partitioned by type");
  by("bysize", Classifier::kSize, "the set partitioned by size");
  by("bymodule", Classifier::kModule,
     "the set partitioned by module (the module a member is, or none)");
  by("byunity", Classifier::kUnity, "the set as one row (hp.Anything)");
  by("byrcs", Classifier::kRcs,
     "the set partitioned by its referrers' Clodo kinds (Heapy's Rcs)");
  by("byvia", Classifier::kVia,
     "the set partitioned by the edges that refer to each member");
  by("byprod", Classifier::kProd,
     "the set partitioned by allocation site (the target's tracemalloc)");
  // Heapy's byidset: one row per object (its kind a one-object set); here
  // its kind is the object's identity, as by('Id').
  by("byidset", Classifier::kId,
     "one row per object, its kind the object's identity (by('Id'))");
  t.getsets.push_back({"partition", PartitionGet, nullptr,
                       "Heapy's Partition (annex.Partition): the rows as "
                       "PartRows, get_row, get_rows, get_set, get_sets, "
                       "get_stat",
                       nullptr});
  t.getsets.push_back({"er", ErGet, nullptr,
                       "the classifier (hp.Clodo, (hp.Type & hp.Size)); "
                       "x.er.name is its name",
                       nullptr});
  t.getsets.push_back(
      {"parts", PartsGet, nullptr, "the rows as a list of sets", nullptr});
  t.methods.push_back(kByMethod);
  return t;
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
  const std::string& kind = rows[0].kind;
  if (c.is(Classifier::kSize)) {
    auto e = std::make_shared<KindExpr>();
    e->classifier = c;
    e->size = set.sizes[0];
    e->label = kind;
    e->repr = absl::StrCat("hp.Size(", e->size, ")");
    return NewKind(e);
  }
  // Heapy's kinds: a class's (Clodo or Type) is its Type kind, a dict's
  // that of its owner's type's dicts.
  if (c.is(Classifier::kClodo) || c.is(Classifier::kType) ||
      c.is(Classifier::kDictOf)) {
    if (c.is(Classifier::kDictOf) && kind == kNotDictKind) {
      return NewKind(NotDictExpr());
    }
    if (!c.is(Classifier::kType) && kind == kNoOwnerDict) {
      return NewKind(NoOwnerAtom());
    }
    if (!c.is(Classifier::kType) && absl::StartsWith(kind, "dict of ")) {
      return NewKind(DictOfAtom(kind.substr(8)));
    }
    return NewKind(TypeAtom(kind));
  }
  if (c.is(Classifier::kRcs) || c.is(Classifier::kRefdby)) {
    // The referrers' kinds, as the label joins them (a base whose own
    // kinds hold ", ", such as Rcs or Via, splits them too: the kind
    // selects by the row's label, but its repr and orders see more kinds).
    std::vector<std::string> labels;
    if (kind != "<Nothing>") labels = absl::StrSplit(kind, ", ");
    return NewKind(RefdbyAtom(
        c.is(Classifier::kRcs) ? Classifier(Classifier::kClodo) : *c.base(0),
        std::move(labels), &kind));
  }
  if (c.is(Classifier::kId)) return NewKind(IdAtom(set.addresses[0]));
  return NewKind(
      Atom(c, kind, absl::StrCat("<", c.Name(), " kind ", Quote(kind), ">")));
}

PyObject* KindsBinary(PyObject* a, PyObject* b, char op) {
  const bool ka = IsKind(a), kb = IsKind(b);
  if (ka == kb) Py_RETURN_NOTIMPLEMENTED;
  PyObject* set = ka ? b : a;
  PyObject* kind = ka ? a : b;
  PyTypeObject* idset = AnnexType(AnnexName::kIdSet);
  if (idset == nullptr) return nullptr;
  const bool is_set = Py_TYPE(set) == idset;
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
  if (KindDef().AddTo(module, "Kind") == nullptr ||
      FactoryDef().AddTo(module, "KindFactory") == nullptr ||
      SoKindDef().AddTo(module, "SoKind") == nullptr) {
    return -1;
  }
  // x.partition (hp_partition.cc).
  return AddPartitionTypes(module);
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

bool IsKindObject(PyObject* o) { return IsKind(o); }

KindedSetFilter KindFilter(Session* session, PyObject* kind) {
  HeapView* view = ViewOf(session);
  if (view == nullptr) return nullptr;
  Expr expr = ExprOf(kind);
  return [view, expr](const KindedSet& set) { return Filter(view, set, expr); };
}

}  // namespace annex::glue::module
