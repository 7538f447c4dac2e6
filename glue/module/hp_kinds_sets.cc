// The kinds face of `hp`, kinds applied to sets: the filter behind
// set & kind and set - kind (KindsBinary, KindFilter), the IdSet's
// classifier attributes (x.by(er), x.bytype, x.byclodo, ..., x.er,
// x.parts, x.partition), x.kind of a one-row set, partition rows x[i] and
// x[a:b], and ~x.
//
// A kind is a predicate on objects (hp_kinds_internal.h). `set & kind`
// classifies the set by each classifier the kind mentions (recorded data
// when it can, a re-walk for Module / Via / Rcs, where members that died
// drop out) and keeps the members that satisfy the expression.
//
// Where: annex thread, GIL held, annex current; the filter a KindFilter
// returns may also run inside a heap question (it makes and releases no
// Python object).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"
#include "glue/module/hp_kinds_internal.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"
#include "monitor/heap/heap_engine.h"

namespace annex::glue::module {

namespace {

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

}  // namespace

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
  heap::SharedGraph graph =
      view->engine().Shared(heap::GraphOptions::NodesOnly());
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

namespace {

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

KindedSetFilter KindFilter(Session* session, PyObject* kind) {
  HeapView* view = ViewOf(session);
  if (view == nullptr) return nullptr;
  Expr expr = ExprOf(kind);
  return [view, expr](const KindedSet& set) { return Filter(view, set, expr); };
}

}  // namespace annex::glue::module
