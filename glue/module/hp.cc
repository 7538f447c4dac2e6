// The `annex` extension module and its `hp` object.
#include "glue/module/hp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/annex_access.h"
#include "glue/heap_record.h"
#include "glue/heap_view.h"
#include "glue/memory_budget.h"
#include "glue/module/hp_internal.h"
#include "glue/module/report.h"
#include "glue/retention_view.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/target_threads.h"

namespace annex::glue::module {

// Where: annex thread, GIL held, annex current. The mapping is stated in
// hp_internal.h.
PyObject* RaiseStatus(const absl::Status& status) {
  const std::pair<absl::StatusCode, PyObject*> kMapping[] = {
      {absl::StatusCode::kInvalidArgument, PyExc_ValueError},
      {absl::StatusCode::kNotFound, PyExc_KeyError},
      {absl::StatusCode::kResourceExhausted, PyExc_MemoryError},
      {absl::StatusCode::kDeadlineExceeded, PyExc_TimeoutError},
      {absl::StatusCode::kCancelled, PyExc_KeyboardInterrupt},
  };
  PyObject* type = PyExc_RuntimeError;
  for (const auto& [code, exception] : kMapping) {
    if (status.code() == code) type = exception;
  }
  const std::string message(status.message());
  PyErr_SetString(type, message.c_str());
  return nullptr;
}

HeapView* ViewOf(Session* session) {
  auto view = session->Get<HeapView>();
  if (!view.ok()) {
    RaiseStatus(view.status());
    return nullptr;
  }
  return *view;
}

namespace {

// One per namespace (each console client, each host session): its
// reference point is its own.
struct HpObject {
  PyObject_HEAD Session* session;
  uint64_t owner;  // this hp's account in the session's MemoryBudget
  std::shared_ptr<const ReferencePoint>* ref;  // owned; null: none set
  // hp.pause_limit in seconds: NaN for the host's default
  // (Options::question_pause_limit), infinity for none.
  double pause_limit_s;
};

constexpr const char* kHpDoc =
    "hp: the Annex session inside the annex interpreter.\n\n"
    "Services (built on first use):\n"
    "  hp.heap()      objects reachable from the target's roots (since\n"
    "                 hp.setref(), when called), partitioned by Clodo;\n"
    "                 sizes count each instance's attribute values;\n"
    "                 values=False: sys.getsizeof's sizes instead\n"
    "  hp.heapu()     tracked by the target's gc but unreachable;\n"
    "                 garbage=True: cyclic garbage only, False: the rest\n"
    "  hp.setref()    later hp.heap() shows only what was created since\n"
    "                 and is still alive (by identity: a new object at a\n"
    "                 dead one's address is new); this hp's own reference\n"
    "                 point: other consoles and host sessions keep theirs.\n"
    "                 setref(reachable=x, unreachable=y): x, y (IdSets) are\n"
    "                 the references of heap() and heapu()\n"
    "  hp.setrelheap(x=None) / hp.setrelheapu(x=None): only heap()'s /\n"
    "                 heapu()'s reference (x, or the current one)\n"
    "  hp.clearref()  forget the reference point\n"
    "  hp.idset(ids)  the live objects with those ids (id() in the target)\n"
    "  hp.Nothing     the empty set\n"
    "  hp.threads()   the target's threads, one line each\n"
    "  hp.stacks()    the Python stack of every target thread\n"
    "  hp.pause_limit how long one heap question may hold the target, in\n"
    "                 seconds (None: no limit); past it the question stops\n"
    "                 with a TimeoutError and the target runs again.\n"
    "                 Ctrl-C, or the client leaving, stops one too\n"
    "Sets: len(x), x.count, x.size, x[i] / x[a:b] (rows' objects), x.parts,\n"
    "x.more (the next ten rows; .more again: the ten after), x.all (every\n"
    "row), x.kind, x.brief, x.theone, x.er,\n"
    "x | y, x & y, x - y, x ^ y, x <= y (subset), x.byid (the objects,\n"
    "with values and names; x.byid[i] one of them as a set),\n"
    "x.maprox.attr / x.maprox['k'] (what each member holds there, read in\n"
    "the target), x.prod (allocation traceback; tracemalloc),\n"
    "x.disjoint(y), x.indisize, x.get_examples(n), x.owners (objects whose\n"
    "dict is in x), x.byidset; ~x and x | kind are kinds; x.doc.\n"
    "Stats (rows only, no objects): s = x.stat prints as the table; s[i],\n"
    "s[a:b], s.rows, s.count, s.size, s.get_rows(), s.get_row(i),\n"
    "s.get_rows_of_kinds(k), s.get_rows_n_and_other(N, sortby='Size');\n"
    "s_a - s_b: the difference table\n"
    "(x.diff(y) = x.stat - y.by(x.er).stat); ==; s.json(), s.to_json(path).\n"
    "x.dump(path) / s.dump(path) append a text record to the file (written\n"
    "with the host process's permissions); hp.load(path) reads the last one\n"
    "back, hp.loadall(path) all of them; hp.load(f) of an open file its next\n"
    "record (a loop of hp.load(f) walks the file; EOFError at its end).\n"
    "Classifiers (Heapy's): x.byclodo (class, or 'dict of <owner class>' /\n"
    "'dict (no owner)'; the default), x.bytype, x.bysize, x.bymodule,\n"
    "x.byunity, x.byrcs (kinds of the referrers), x.byvia (how referrers\n"
    "hold it: .attr, ['key'], [3], .f_locals['x']), x.byprod (allocation\n"
    "line; needs tracemalloc tracing in the target), x.by('Type&Size').\n"
    "byrcs, byvia, bymodule, byprod walk again: members that died drop out.\n"
    "Kinds: hp.Type(dict) or hp.Type('__main__.Foo'), hp.Type.Dict,\n"
    "hp.Clodo(T) / hp.Clodo(dictof=T) / hp.Clodo(dictof=()), hp.Size(n)\n"
    "with .alt('>='), hp.Module(name='m', at=addr), hp.Via(\"['k']\"),\n"
    "hp.Rcs(...), hp.Id(addr), hp.Prod(file, line), hp.Unity(),\n"
    "hp.Type(T).dictof / hp.Type.dictof(T); kind.alt('!=') is ~kind.\n"
    "x & kind, x - kind, ~kind, kind | kind, kind & kind.\n"
    "Classifiers as objects: x.by(hp.Type & hp.Size), hp.Clodo.refdby.\n"
    "x.partition: the rows with their sets (Heapy's Partition).\n"
    "Why is it alive (each walks the heap again):\n"
    "  x.sp           shortest paths from the roots (also x.shpaths);\n"
    "                 x.get_shpaths(avoid_nodes=, avoid_edges=, limit=20,\n"
    "                 src=); p = x.sp; p[0], p.more, p.numpaths, p.depth(),\n"
    "                 p.avoided(-1): the next route; hp.Root: the roots\n"
    "  x.referrers    objects referring to x; x.referents: referred to\n"
    "  x.pathsin      every reference into x, named; x.pathsout: out of x\n"
    "  x.dominos      what would be freed with x; x.domisize: its bytes\n"
    "  x.imdom        the immediate dominators of x\n"
    "  x.rp           reference pattern: rows p.a, p[i], p.more; x.get_rp(\n"
    "                 depth=7, er=, imdom=, bf=, src=, stopkind=, nocyc=)\n\n"
    "Session: hp.Anything (the kind of every object), hp.iso(ids...) (the\n"
    "live objects with those ids), hp.iso(\"app.cache['k'].items\") (read\n"
    "in the target: names, .attrs, [str/int]; no target code runs),\n"
    "hp.doc (this text), x.doc (a set's).\n"
    "The annex's standard-library modules: hp.stdlib.<name>, e.g.\n"
    "hp.stdlib.json; other names raise AttributeError.";

AnnexAccess* Access(PyObject* self) {
  Session* session = reinterpret_cast<HpObject*>(self)->session;
  auto access = session->Get<AnnexAccess>();
  if (!access.ok()) {
    RaiseStatus(access.status());
    return nullptr;
  }
  return *access;
}

// Where (all methods): annex thread, GIL held, annex current.
PyObject* HpThreads(PyObject* self, PyObject*) {
  AnnexAccess* a = Access(self);
  if (a == nullptr) return nullptr;
  return NewText(python::DescribeThreads(a->runtime().thread_states()));
}

PyObject* HpStacks(PyObject* self, PyObject*) {
  AnnexAccess* a = Access(self);
  if (a == nullptr) return nullptr;
  return NewText(python::DescribeStacks(a->runtime().thread_states()));
}

// annex.Text: a str that shows as itself at the console (multi-line
// tables and paths), not as a quoted literal.
PyObject* TextRepr(PyObject* self) { return PyObject_Str(self); }

const TypeDef& TextDef() {
  static const TypeDef* def = new TypeDef(
      "annex.Text", "Text that displays as itself.", 0, AttributeTable(),
      {{Py_tp_repr, reinterpret_cast<void*>(TextRepr)}},
      /*dealloc=*/nullptr, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE);
  return *def;
}

}  // namespace

// A new annex.Text holding `text`. Where: annex thread, GIL held.
PyObject* NewText(const std::string& text) {
  PyObject* type = AnnexObject(AnnexName::kText);
  if (type == nullptr) return nullptr;
  return PyObject_CallFunction(type, "s#", text.data(),
                               static_cast<Py_ssize_t>(text.size()));
}

namespace {

// What an IdSet owns: its charge in the budget and its members.
void IdSetClear(PyObject* self) {
  Session* session = reinterpret_cast<IdSetObject*>(self)->session;
  if (MemoryBudget* budget =
          session ? session->Peek<MemoryBudget>() : nullptr) {
    budget->Release(reinterpret_cast<uintptr_t>(self));
  }
  delete reinterpret_cast<IdSetObject*>(self)->set;
  python::FlushDeathWatch();  // GIL held: a released watch goes now
}

// The note a kept set adds to its table when members died since it was
// made (they are no longer counted).
std::string DeadNote(const KindedSet& set) {
  if (set.dead == 0) return "";
  return absl::StrCat("\n(", set.dead, set.dead == 1 ? " member" : " members",
                      " died since the set was made: not counted; x.dead)");
}

PyObject* IdSetRepr(PyObject* self);

// An empty set prints as Heapy's does: repr `hp.Nothing`, str `<Nothing>`;
// one whose members all died keeps its table and the note saying so.
bool PrintsAsNothing(PyObject* self) {
  const KindedSet& set = SetOf(self);
  return set.count() == 0 && set.dead == 0;
}

PyObject* IdSetStr(PyObject* self) {
  if (PrintsAsNothing(self)) return PyUnicode_FromString("<Nothing>");
  return IdSetRepr(self);
}

PyObject* IdSetRepr(PyObject* self) {
  if (PrintsAsNothing(self)) return PyUnicode_FromString("hp.Nothing");
  std::string t = SetOf(self).PartitionTable();
  if (!t.empty() && t.back() == '\n') t.pop_back();
  t += DeadNote(SetOf(self));
  return PyUnicode_FromStringAndSize(t.data(), t.size());
}

Py_ssize_t IdSetLen(PyObject* self) { return SetOf(self).count(); }

// `address in x`: whether the object at that address (an int, as id() of a
// target object would give) is a member. Target objects themselves never
// reach the annex.
int IdSetContains(PyObject* self, PyObject* key) {
  if (!PyLong_Check(key)) return 0;
  unsigned long long a = PyLong_AsUnsignedLongLong(key);
  if (a == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  const auto& v = SetOf(self).addresses;
  return std::binary_search(v.begin(), v.end(), static_cast<uintptr_t>(a));
}

PyObject* IdSetBinary(PyObject* a, PyObject* b, char op) {
  PyTypeObject* type = Py_TYPE(a);
  if (Py_TYPE(b) != type) {
    // A set with a kind (hp_kinds_sets.cc), e.g. h & hp.Type(dict).
    return KindsBinary(a, b, op);
  }
  return NewIdSet(reinterpret_cast<IdSetObject*>(a)->session,
                  KindedSet::Combine(SetOf(a), SetOf(b), op));
}
PyObject* IdSetOr(PyObject* a, PyObject* b) { return IdSetBinary(a, b, '|'); }
PyObject* IdSetAnd(PyObject* a, PyObject* b) { return IdSetBinary(a, b, '&'); }
PyObject* IdSetSub(PyObject* a, PyObject* b) { return IdSetBinary(a, b, '-'); }
PyObject* IdSetXor(PyObject* a, PyObject* b) { return IdSetBinary(a, b, '^'); }

// ==, != and the subset tests <=, <, >=, > (Heapy's, by identity).
PyObject* IdSetRichCompare(PyObject* a, PyObject* b, int op) {
  if (Py_TYPE(a) != Py_TYPE(b)) Py_RETURN_NOTIMPLEMENTED;
  const auto& x = SetOf(a).addresses;
  const auto& y = SetOf(b).addresses;
  auto subset = [](const PackedAddresses& p, const PackedAddresses& q) {
    return p.size() <= q.size() &&
           std::includes(q.begin(), q.end(), p.begin(), p.end());
  };
  bool r = false;
  switch (op) {
    case Py_EQ:
      r = x == y;
      break;
    case Py_NE:
      r = x != y;
      break;
    case Py_LE:
      r = subset(x, y);
      break;
    case Py_LT:
      r = x.size() < y.size() && subset(x, y);
      break;
    case Py_GE:
      r = subset(y, x);
      break;
    case Py_GT:
      r = y.size() < x.size() && subset(y, x);
      break;
  }
  return PyBool_FromLong(r);
}

PyObject* IdSetCount(PyObject* self, void*) {
  return PyLong_FromSize_t(SetOf(self).count());
}
PyObject* IdSetDead(PyObject* self, void*) {
  return PyLong_FromSize_t(SetOf(self).dead);
}
PyObject* IdSetSize(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(SetOf(self).total_size());
}
PyObject* IdSetMoreGet(PyObject* self, void*) { return IdSetMore(self); }
PyObject* IdSetAll(PyObject* self, void*) {
  std::string t = SetOf(self).PartitionTable(~size_t{0});
  if (!t.empty() && t.back() == '\n') t.pop_back();
  return NewText(t);
}
PyObject* IdSetStatGet(PyObject* self, void*) { return IdSetStat(self); }
PyObject* IdSetKind(PyObject* self, void*) { return IdSetKindOf(self); }
PyObject* IdSetDomisize(PyObject* self, void*) {
  auto view =
      reinterpret_cast<IdSetObject*>(self)->session->Get<RetentionView>();
  if (!view.ok()) return RaiseStatus(view.status());
  auto bytes = (*view)->RetainedSize(SetOf(self));
  if (!bytes.ok()) return RaiseStatus(bytes.status());
  return PyLong_FromUnsignedLongLong(*bytes);
}
PyObject* IdSetOwners(PyObject* self, void*) {
  HeapView* view = ViewOf(reinterpret_cast<IdSetObject*>(self)->session);
  if (view == nullptr) return nullptr;
  auto owners = view->Owners(SetOf(self));
  if (!owners.ok()) return RaiseStatus(owners.status());
  return NewIdSet(reinterpret_cast<IdSetObject*>(self)->session,
                  std::move(*owners));
}

PyObject* IdSetDoc(PyObject* self, void*);

PyGetSetDef kIdSetGetSet[] = {
    {"count", IdSetCount, nullptr,
     "number of members (those still alive: the same objects as when seen)",
     nullptr},
    {"dead", IdSetDead, nullptr,
     "members that died since the set was made (no longer counted)", nullptr},
    {"size", IdSetSize, nullptr,
     "total size in bytes (sys.getsizeof, plus each instance's attribute "
     "values unless made with values=False)",
     nullptr},
    {"indisize", IdSetSize, nullptr,
     "the sum of the members' individual sizes (Heapy's; the same as .size)",
     nullptr},
    {"owners", IdSetOwners, nullptr,
     "the objects whose attribute dict (__dict__, a class's or a module's "
     "dict) is a member (Heapy's; walks again)",
     nullptr},
    {"doc", IdSetDoc, nullptr, "what a set offers, one line each", nullptr},
    {"more", IdSetMoreGet, nullptr,
     "the next ten rows of the table (and .more of that the next ten)",
     nullptr},
    {"all", IdSetAll, nullptr, "the whole partition table", nullptr},
    {"stat", IdSetStatGet, nullptr,
     "the rows without the objects (annex.Stat): print, diff, dump, json",
     nullptr},
    {"kind", IdSetKind, nullptr, "the kind of a one-kind set", nullptr},
    {"domisize", IdSetDomisize, nullptr,
     "bytes that would be freed if the set's live members went away", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// x.disjoint(y): no member in common (Heapy's; by identity).
PyObject* IdSetDisjoint(PyObject* self, PyObject* other) {
  if (Py_TYPE(other) != Py_TYPE(self)) {
    return PyErr_Format(PyExc_TypeError,
                        "disjoint() takes an annex.IdSet, not %.100s",
                        Py_TYPE(other)->tp_name);
  }
  const auto& x = SetOf(self).addresses;
  const auto& y = SetOf(other).addresses;
  size_t i = 0, j = 0;
  while (i < x.size() && j < y.size()) {
    if (x[i] == y[j]) Py_RETURN_FALSE;
    if (x[i] < y[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  Py_RETURN_TRUE;
}

// x.get_examples(n=2): up to n members, each a one-object IdSet, taken
// from the table's rows in turn (row 0's first member, row 1's first, ...,
// then each row's second), so that the examples show the kinds first.
PyObject* IdSetGetExamples(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"n", nullptr};
  Py_ssize_t n = 2;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:get_examples",
                                   const_cast<char**>(kw), &n)) {
    return nullptr;
  }
  if (n < 0 || n > 1000) {
    PyErr_SetString(PyExc_ValueError,
                    "get_examples(n): n is 0 to 1000 (each example is a "
                    "one-object IdSet; use x[i] or x.byid for more)");
    return nullptr;
  }
  const KindedSet& set = SetOf(self);
  std::vector<KindedSet::Row> rows = set.Rows();
  // Members of each row, in address order.
  std::vector<std::vector<size_t>> members(rows.size());
  std::vector<int64_t> row_of_label;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (row_of_label.size() <= rows[r].label) {
      row_of_label.resize(rows[r].label + 1, -1);
    }
    row_of_label[rows[r].label] = static_cast<int64_t>(r);
  }
  for (size_t i = 0; i < set.count(); ++i) {
    const uint32_t label = set.LabelOf(i);
    if (label < row_of_label.size() && row_of_label[label] >= 0) {
      members[row_of_label[label]].push_back(i);
    }
  }
  std::vector<size_t> picked;
  for (size_t depth = 0; picked.size() < static_cast<size_t>(n); ++depth) {
    bool any = false;
    for (size_t r = 0;
         r < rows.size() && picked.size() < static_cast<size_t>(n); ++r) {
      if (depth < members[r].size()) {
        picked.push_back(members[r][depth]);
        any = true;
      }
    }
    if (!any) break;
  }
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  Session* session = reinterpret_cast<IdSetObject*>(self)->session;
  for (size_t i : picked) {
    KindedSet one = set.Subset({i});
    one.classifier = set.classifier;
    if (!ListAppendNew(list.get(), NewIdSet(session, std::move(one)))) {
      return nullptr;
    }
  }
  return list.release();
}

PyMethodDef kIdSetMethods[] = {
    {"dump",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(IdSetDump)),
     METH_VARARGS | METH_KEYWORDS,
     "dump(dest, mode='a'): appends x.stat's text record to dest (a path, "
     "created with the process's permissions, or an open file)."},
    {"diff", IdSetDiff, METH_O,
     "diff(y) -> Stat: x.stat - y.by(x.er).stat, the difference by kind."},
    {"disjoint", IdSetDisjoint, METH_O,
     "disjoint(y) -> bool: whether x and y have no member in common."},
    {"get_examples",
     reinterpret_cast<PyCFunction>(
         reinterpret_cast<void (*)()>(IdSetGetExamples)),
     METH_VARARGS | METH_KEYWORDS,
     "get_examples(n=2) -> [IdSet]: up to n members as one-object sets, "
     "one per row of the table in turn (the largest kinds first)."},
    {nullptr, nullptr, 0, nullptr},
};

const TypeDef& IdSetDef();

// x.doc: the set's attributes and methods, one line each with its doc
// (Heapy's x.doc), from the type's attribute table.
PyObject* IdSetDoc(PyObject*, void*) {
  std::string text =
      "annex.IdSet: a set of target objects (identities with the kind and "
      "size seen); docs/hp.md.\n";
  auto line = [&text](const char* name, const char* doc) {
    std::string d = doc != nullptr ? doc : "";
    absl::StrAppend(&text, "  x.", name, ": ", d, "\n");
  };
  const TypeDef& def = IdSetDef();
  for (const PyGetSetDef& g : def.getsets()) {
    if (g.name[0] != '_') line(g.name, g.doc);
  }
  for (const PyMethodDef& m : def.methods()) {
    if (m.ml_name[0] != '_' && m.ml_doc != nullptr) line(m.ml_name, m.ml_doc);
  }
  text +=
      "  x[i], x[a:b]: the objects of row i / rows a..b\n"
      "  x | y, x & y, x - y, x ^ y, x <= y, ==: set algebra by identity; "
      "x & kind, x - kind; ~x and x | kind are kinds\n";
  return NewText(text);
}

// The IdSet type: one attribute table, its own and each concern's.
const TypeDef& IdSetDef() {
  static const TypeDef* def = new TypeDef(
      "annex.IdSet",
      "A set of target objects (identities with the kind and size seen); "
      "x.doc lists what it offers, docs/hp.md explains.",
      sizeof(IdSetObject),
      AttributeTable(kIdSetGetSet, kIdSetMethods)
          .Add(ValuesAttributes())
          .Add(RetentionAttributes())
          .Add(KindsAttributes()),
      {
          {Py_tp_repr, reinterpret_cast<void*>(IdSetRepr)},
          {Py_tp_str, reinterpret_cast<void*>(IdSetStr)},
          {Py_tp_richcompare, reinterpret_cast<void*>(IdSetRichCompare)},
          {Py_sq_length, reinterpret_cast<void*>(IdSetLen)},
          {Py_sq_contains, reinterpret_cast<void*>(IdSetContains)},
          {Py_mp_length, reinterpret_cast<void*>(IdSetLen)},
          {Py_mp_subscript, reinterpret_cast<void*>(IdSetSubscript)},
          {Py_nb_or, reinterpret_cast<void*>(IdSetOr)},
          {Py_nb_and, reinterpret_cast<void*>(IdSetAnd)},
          {Py_nb_subtract, reinterpret_cast<void*>(IdSetSub)},
          {Py_nb_xor, reinterpret_cast<void*>(IdSetXor)},
          {Py_nb_invert, reinterpret_cast<void*>(IdSetInvert)},
      },
      InstanceDealloc<IdSetClear>);
  return *def;
}

}  // namespace

PyObject* NewIdSet(Session* session, KindedSet set) {
  PyTypeObject* type = AnnexType(AnnexName::kIdSet);
  if (type == nullptr) return nullptr;
  PyRef obj = PyRef::Steal(PyType_GenericAlloc(type, 0));
  if (!obj) return nullptr;
  auto* idset = reinterpret_cast<IdSetObject*>(obj.get());
  idset->session = session;
  idset->set = nullptr;
  // Charged before the set is kept: one that would pass the annex's memory
  // budget is refused (and freed here) with what the session holds. The
  // object goes before the exception is set (its dealloc runs Python).
  absl::StatusOr<MemoryBudget*> budget = session->Get<MemoryBudget>();
  if (!budget.ok()) {
    obj.reset();
    return RaiseStatus(budget.status());
  }
  // Kept compact: the columns' spare capacity goes before it is charged.
  set.ShrinkToFit();
  const std::string what =
      absl::StrCat("<", set.count(), " objects, ", set.classifier.Name(), ">");
  absl::Status charged = (*budget)->Charge(
      reinterpret_cast<uintptr_t>(obj.get()), set.MemoryBytes(), what);
  if (!charged.ok()) {
    obj.reset();  // IdSetDealloc: nothing was charged, no set to free
    return RaiseStatus(charged);  // ResourceExhausted: MemoryError
  }
  idset->set = new KindedSet(std::move(set));
  return obj.release();
}

namespace {

Session* SessionOf(PyObject* hp) {
  return reinterpret_cast<HpObject*>(hp)->session;
}

// hp.pause_limit's seconds as a duration (infinity: none; NaN: unset, read
// as none here: callers resolve it to the default first).
absl::Duration PauseLimitOf(double seconds) {
  if (std::isnan(seconds) || std::isinf(seconds)) {
    return absl::InfiniteDuration();
  }
  return absl::Seconds(seconds);
}

std::shared_ptr<const ReferencePoint>& RefOf(PyObject* hp) {
  auto* h = reinterpret_cast<HpObject*>(hp);
  if (h->ref == nullptr) h->ref = new std::shared_ptr<const ReferencePoint>();
  return *h->ref;
}

// hp.heap(values=True): exact sizes (sys.getsizeof plus each instance's
// attribute values block), or with values=False sys.getsizeof's alone.
PyObject* HpHeap(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kKeywords[] = {"values", nullptr};
  int values = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p:heap",
                                   const_cast<char**>(kKeywords), &values)) {
    return nullptr;
  }
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  auto set =
      view->Heap(RefOf(self).get(), /*keep=*/true,
                 values != 0 ? heap::Sizing::kExact : heap::Sizing::kGetsizeof);
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(SessionOf(self), std::move(*set));
}

// hp.record(format='stat', top=20): one heap record (glue/heap_record.h) of
// the whole heap (the reference point does not apply), as text.
PyObject* HpRecord(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kKeywords[] = {"format", "top", nullptr};
  const char* format_name = "stat";
  Py_ssize_t top = 20;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$sn:record",
                                   const_cast<char**>(kKeywords), &format_name,
                                   &top)) {
    return nullptr;
  }
  absl::StatusOr<RecordFormat> format = ParseRecordFormat(format_name);
  if (!format.ok()) return RaiseStatus(format.status());
  if (top < 1 || top > 100000) {
    PyErr_SetString(PyExc_ValueError, "record(): top must be 1 to 100000");
    return nullptr;
  }
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  const absl::Time start = absl::Now();
  auto set = view->Heap(nullptr, /*keep=*/false);
  const absl::Time end = absl::Now();
  if (!set.ok()) return RaiseStatus(set.status());
  HeapRecord record = MakeHeapRecord(std::move(*set), static_cast<size_t>(top),
                                     absl::ToInt64Microseconds(end - start),
                                     absl::ToUnixMicros(start));
  record.rss_bytes = ResidentBytes();
  record.labels = ProcessLabels("", PY_VERSION);
  const std::string text = record.Text(*format);
  return PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()),
                              "replace");
}

// hp.heapu(garbage=None): all of heapu, or with garbage=True the cyclic
// garbage a collection would free, with garbage=False what it would keep.
PyObject* HpHeapU(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kKeywords[] = {"garbage", nullptr};
  PyObject* garbage = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$O:heapu",
                                   const_cast<char**>(kKeywords), &garbage)) {
    return nullptr;
  }
  HeapView::UnreachablePart part = HeapView::UnreachablePart::kAll;
  if (garbage == Py_True) {
    part = HeapView::UnreachablePart::kGarbage;
  } else if (garbage == Py_False) {
    part = HeapView::UnreachablePart::kHeld;
  } else if (garbage != Py_None) {
    return PyErr_Format(PyExc_TypeError,
                        "heapu(garbage=...) takes True (cyclic garbage), "
                        "False (held by C references) or None (both), "
                        "not %.100s",
                        Py_TYPE(garbage)->tp_name);
  }
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  auto set = view->HeapU(RefOf(self).get(), /*keep=*/true, part);
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(SessionOf(self), std::move(*set));
}

// hp.idset(ids): the live objects among those ids (addresses, as id() in
// the target gives them; target objects themselves never reach the annex).
PyObject* HpIdSet(PyObject* self, PyObject* arg) {
  PyRef it = PyRef::Steal(PyObject_GetIter(arg));
  if (!it) {
    PyErr_SetString(PyExc_TypeError,
                    "idset() takes an iterable of object ids (ints)");
    return nullptr;
  }
  std::vector<uintptr_t> addresses;
  while (PyRef item = PyRef::Steal(PyIter_Next(it.get()))) {
    unsigned long long a =
        PyLong_Check(item.get()) ? PyLong_AsUnsignedLongLong(item.get()) : 0;
    if (a == 0 || PyErr_Occurred()) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError,
                      "idset() takes object ids: ints > 0, as id() gives");
      return nullptr;
    }
    addresses.push_back(static_cast<uintptr_t>(a));
  }
  if (PyErr_Occurred()) return nullptr;
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  auto set = view->FromAddresses(std::move(addresses));
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(SessionOf(self), std::move(*set));
}

// The contents of `arg` as a reference part: an IdSet's live members, or
// (None/absent) `now`. Returns false with an exception set.
bool ReferencePart(PyObject* arg, KindedSet* now, KindedSet* out) {
  if (arg == nullptr || arg == Py_None) {
    *out = std::move(*now);
    return true;
  }
  KindedSet* set = IdSetArg(arg);
  if (set == nullptr) return false;
  PruneDead(*set);
  *out = *set;
  return true;
}

// setref(reachable=None, unreachable=None), setrelheap(reference=None),
// setrelheapu(reference=None): `which` says which parts are set ('b'oth,
// 'r'eachable, 'u'nreachable); the others are kept.
PyObject* SetReference(PyObject* self, PyObject* args, PyObject* kwds,
                       char which) {
  PyObject* reachable = nullptr;
  PyObject* unreachable = nullptr;
  if (which == 'b') {
    static const char* kw[] = {"reachable", "unreachable", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:setref",
                                     const_cast<char**>(kw), &reachable,
                                     &unreachable)) {
      return nullptr;
    }
  } else {
    static const char* kw[] = {"reference", nullptr};
    PyObject** slot = which == 'r' ? &reachable : &unreachable;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, which == 'r' ? "|O:setrelheap" : "|O:setrelheapu",
            const_cast<char**>(kw), slot)) {
      return nullptr;
    }
  }
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  auto ref = std::make_shared<ReferencePoint>();
  const std::shared_ptr<const ReferencePoint>& old = RefOf(self);
  if (old != nullptr) *ref = *old;
  const bool set_r = which != 'u', set_u = which != 'r';
  KindedSet now_r, now_u;
  if (set_r && (reachable == nullptr || reachable == Py_None)) {
    auto h = view->Heap(nullptr, /*keep=*/true);
    if (!h.ok()) return RaiseStatus(h.status());
    now_r = std::move(*h);
  }
  if (set_u && (unreachable == nullptr || unreachable == Py_None)) {
    auto u = view->HeapU(nullptr, /*keep=*/true);
    if (!u.ok()) return RaiseStatus(u.status());
    now_u = std::move(*u);
  }
  if (set_r && !ReferencePart(reachable, &now_r, &ref->reachable)) {
    return nullptr;
  }
  if (set_u && !ReferencePart(unreachable, &now_u, &ref->unreachable)) {
    return nullptr;
  }
  RefOf(self) = ref;
  view->set_latest_ref(ref);
  Py_RETURN_NONE;
}

PyObject* HpSetRef(PyObject* self, PyObject* args, PyObject* kwds) {
  return SetReference(self, args, kwds, 'b');
}
PyObject* HpSetRelHeap(PyObject* self, PyObject* args, PyObject* kwds) {
  return SetReference(self, args, kwds, 'r');
}
PyObject* HpSetRelHeapU(PyObject* self, PyObject* args, PyObject* kwds) {
  return SetReference(self, args, kwds, 'u');
}

PyObject* HpClearRef(PyObject* self, PyObject*) {
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  if (view->latest_ref() == RefOf(self)) view->set_latest_ref(nullptr);
  RefOf(self).reset();
  python::FlushDeathWatch();
  Py_RETURN_NONE;
}

void HpClear(PyObject* self) {
  delete reinterpret_cast<HpObject*>(self)->ref;
  python::FlushDeathWatch();  // GIL held: released watches go now
}

PyObject* HpNothing(PyObject* self, void*) {
  return NewIdSet(SessionOf(self), KindedSet());
}

// hp.memory(): the kept sets of this hp (a console client's) and their
// bytes, largest first, with the budget's limits.
PyObject* HpMemory(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"rows", "trim", nullptr};
  Py_ssize_t rows = 20;
  int trim = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|np:memory",
                                   const_cast<char**>(kw), &rows, &trim)) {
    return nullptr;
  }
  absl::StatusOr<MemoryBudget*> budget = SessionOf(self)->Get<MemoryBudget>();
  if (!budget.ok()) return RaiseStatus(budget.status());
  // trim=True: the heap engine's buffers kept for the next question go
  // back to the host first (the next question allocates them afresh).
  std::string text =
      trim ? absl::StrCat("Freed ", FormatBytes((*budget)->Reclaim()),
                          " of heap engine buffers kept for the next "
                          "question.\n")
           : "";
  absl::StrAppend(
      &text, (*budget)->Describe(reinterpret_cast<HpObject*>(self)->owner,
                                 rows < 0 ? 0 : static_cast<size_t>(rows)));
  // The identity watch serves every hp's kept sets and reference points
  // at once (docs/hp.md, "Identity over time").
  python::FlushDeathWatch();
  const python::DeathWatchStats watch = python::GetDeathWatchStats();
  absl::StrAppend(
      &text, "Identity watch (all hp objects): ", watch.watched_blocks,
      " objects watched, hooks ", watch.installed ? "installed" : "off", "\n");
  return NewText(text);
}

// hp.pb(file, out=None, title='', top=8): Heapy's profile browser is a Tk
// window; the annex runs in the host's process and imports no GUI toolkit
// (design rule 8), so it writes the browser of records instead: the page
// of `annex report` (glue/module/report.h) for the records in `file` (one
// path or a list, e.g. FILE.1 and FILE), to `out` (default: the first
// file's path + ".html"), and prints where. The files are read and the page
// written in the annex; no target object is read. Where: annex thread, GIL
// held, annex current.
PyObject* HpPb(PyObject*, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"file", "out", "title", "top", nullptr};
  PyObject* file = nullptr;
  PyObject* out = Py_None;
  const char* title = "";
  long top = 8;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Osl:pb",
                                   const_cast<char**>(kwlist), &file, &out,
                                   &title, &top)) {
    return nullptr;
  }
  if (top < 1 || top > 30) {
    PyErr_SetString(PyExc_ValueError, "hp.pb: top must be 1 to 30");
    return nullptr;
  }
  PyRef files;  // a list of str paths
  if (PyList_Check(file) || PyTuple_Check(file)) {
    files = PyRef::Steal(PySequence_List(file));
  } else {
    files = PyRef::Steal(PyList_New(0));
    if (files && PyList_Append(files.get(), file) < 0) files.reset();
  }
  if (!files) return nullptr;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(files.get()); ++i) {
    PyRef path = PyRef::Steal(PyOS_FSPath(PyList_GET_ITEM(files.get(), i)));
    if (!path || !PyUnicode_Check(path.get())) {
      PyErr_SetString(PyExc_TypeError,
                      "hp.pb: file must be a path (str) or a list of paths "
                      "of record files (x.dump, annex record)");
      return nullptr;
    }
    PyList_SetItem(files.get(), i, path.release());  // steals it
  }
  if (PyList_GET_SIZE(files.get()) == 0) {
    PyErr_SetString(PyExc_ValueError, "hp.pb: no record file given");
    return nullptr;
  }
  PyRef out_path = PyRef::Steal(
      out == Py_None
          ? PyUnicode_FromFormat("%U.html", PyList_GET_ITEM(files.get(), 0))
          : PyOS_FSPath(out));
  if (!out_path || !PyUnicode_Check(out_path.get())) {
    if (!PyErr_Occurred()) {
      PyErr_SetString(PyExc_TypeError, "hp.pb: out must be a path (str)");
    }
    return nullptr;
  }
  PyRef report = PyRef::Steal(LoadReportPy());
  if (!report) return nullptr;
  PyRef r = PyRef::Steal(PyObject_CallMethod(
      report.get(), "main", "OOsl", files.get(), out_path.get(), title, top));
  if (!r) return nullptr;
  Py_RETURN_NONE;
}

PyObject* HpLoadMethod(PyObject*, PyObject* args, PyObject* kwds) {
  return HpLoad(args, kwds);
}
PyObject* HpLoadAllMethod(PyObject*, PyObject* args, PyObject* kwds) {
  return HpLoadAll(args, kwds);
}

// hp.pause_limit: seconds (a float), or None for no limit.
PyObject* HpGetPauseLimit(PyObject* self, void*) {
  auto* h = reinterpret_cast<HpObject*>(self);
  absl::Duration limit = PauseLimitOf(h->pause_limit_s);
  if (std::isnan(h->pause_limit_s)) {
    absl::StatusOr<HeapView*> view = SessionOf(self)->Get<HeapView>();
    if (!view.ok()) return RaiseStatus(view.status());
    limit = (*view)->default_pause_limit();
  }
  if (limit == absl::InfiniteDuration()) Py_RETURN_NONE;
  return PyFloat_FromDouble(absl::ToDoubleSeconds(limit));
}

int HpSetPauseLimit(PyObject* self, PyObject* value, void*) {
  auto* h = reinterpret_cast<HpObject*>(self);
  double seconds;
  if (value == nullptr) {  // del hp.pause_limit: the host's default again
    seconds = std::nan("");
  } else if (value == Py_None) {
    seconds = std::numeric_limits<double>::infinity();
  } else {
    seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      seconds = -1.0;
    }
    if (!(seconds > 0)) {
      PyErr_SetString(PyExc_ValueError,
                      "hp.pause_limit: how long one heap question may hold "
                      "the target, in seconds (a positive number), or None "
                      "for no limit; del hp.pause_limit restores the "
                      "default");
      return -1;
    }
  }
  absl::StatusOr<HeapView*> view = SessionOf(self)->Get<HeapView>();
  if (!view.ok()) {
    RaiseStatus(view.status());
    return -1;
  }
  h->pause_limit_s = seconds;
  (*view)->set_pause_limit(std::isnan(seconds) ? (*view)->default_pause_limit()
                                               : PauseLimitOf(seconds),
                           "hp.pause_limit");
  return 0;
}

PyObject* HpAnythingGet(PyObject*, void*) { return HpAnything(); }
PyObject* HpRootGet(PyObject* self, void*) { return HpRoot(SessionOf(self)); }
PyObject* HpDocGet(PyObject*, void*) { return NewText(kHpDoc); }
PyObject* HpStdlibGet(PyObject*, void*) {
  PyTypeObject* type = AnnexType(AnnexName::kStdlib);
  if (type == nullptr) return nullptr;
  return PyType_GenericAlloc(type, 0);
}

PyGetSetDef kHpGetSet[] = {
    {"Nothing", HpNothing, nullptr, "the empty set", nullptr},
    {"Anything", HpAnythingGet, nullptr,
     "the kind every object has: x & hp.Anything is x, ~hp.Anything selects "
     "nothing",
     nullptr},
    {"doc", HpDocGet, nullptr, "what hp offers (help(hp) shows the same)",
     nullptr},
    {"Root", HpRootGet, nullptr,
     "the roots paths start at (%R), found now: prints them; "
     "hp.Root.<attribute> is what one holds",
     nullptr},
    {"stdlib", HpStdlibGet, nullptr,
     "the annex's standard-library modules: hp.stdlib.json is the annex's "
     "json module",
     nullptr},
    {"pause_limit", HpGetPauseLimit, HpSetPauseLimit,
     "how long one heap question of this hp may hold the target, in "
     "seconds (None: no limit); past it the question stops with a "
     "TimeoutError and the target runs again. del: the host's default.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// The generic attribute lookup of `self`. When it finds nothing, the
// AttributeError is cleared and `*n` is the name, for the caller's own
// lookup; a private name or one with a NUL raises AttributeError naming
// `owner`. Returns the attribute, or nullptr: an error is set, or `*n` is.
PyObject* GenericGetattrOrName(PyObject* self, PyObject* name,
                               const char* owner, const char** n) {
  *n = nullptr;
  PyObject* found = PyObject_GenericGetAttr(self, name);
  if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
    return found;
  }
  PyErr_Clear();
  Py_ssize_t len = 0;
  const char* text = PyUnicode_AsUTF8AndSize(name, &len);
  if (text == nullptr) return nullptr;
  if (text[0] == '_' || std::strlen(text) != static_cast<size_t>(len)) {
    PyErr_Format(PyExc_AttributeError, "%s has no attribute %R", owner, name);
    return nullptr;
  }
  *n = text;
  return nullptr;
}

PyObject* HpGetattro(PyObject* self, PyObject* name) {
  const char* n = nullptr;
  PyObject* found = GenericGetattrOrName(self, name, "hp", &n);
  if (n == nullptr) return found;
  // Kinds: hp.Type, hp.Clodo, hp.Size, ... (hp_kinds_classifiers.cc).
  if (PyObject* kind = HpKindFactory(SessionOf(self), n)) return kind;
  if (PyErr_Occurred()) return nullptr;
  // No such service: say which names are close (difflib, in the annex).
  std::string hint;
  PyRef names = PyRef::Steal(PyObject_Dir(self));
  PyRef difflib =
      PyRef::Steal(names ? PyImport_ImportModule("difflib") : nullptr);
  PyRef close = PyRef::Steal(
      difflib ? PyObject_CallMethod(difflib.get(), "get_close_matches", "OO",
                                    name, names.get())
              : nullptr);
  if (close && PyList_Check(close.get()) && PyList_GET_SIZE(close.get()) > 0) {
    PyRef sep = PyRef::Steal(PyUnicode_FromString("', 'hp."));
    PyRef joined =
        PyRef::Steal(sep ? PyUnicode_Join(sep.get(), close.get()) : nullptr);
    const char* j = joined ? PyUnicode_AsUTF8(joined.get()) : nullptr;
    if (j != nullptr) hint = absl::StrCat("; did you mean 'hp.", j, "'?");
  }
  PyErr_Clear();
  PyErr_Format(PyExc_AttributeError,
               "hp has no attribute '%s'%s (dir(hp) lists them; the "
               "annex's standard-library modules are hp.stdlib.<name>)",
               n, hint.c_str());
  return nullptr;
}

// hp.stdlib.<name>: the annex's standard-library module of that name.
PyObject* StdlibGetattro(PyObject* self, PyObject* name) {
  const char* n = nullptr;
  PyObject* found = GenericGetattrOrName(self, name, "hp.stdlib", &n);
  if (n == nullptr) return found;
  PyObject* module = PyImport_ImportModule(n);
  if (module == nullptr && PyErr_ExceptionMatches(PyExc_ImportError)) {
    PyErr_Clear();
    PyErr_Format(PyExc_AttributeError,
                 "the annex has no standard-library module '%s'", n);
  }
  return module;
}

PyObject* StdlibRepr(PyObject*) {
  return PyUnicode_FromString(
      "<hp.stdlib: the annex's standard-library modules, e.g. "
      "hp.stdlib.json>");
}

const TypeDef& StdlibDef() {
  static const TypeDef* def =
      new TypeDef("annex.Stdlib",
                  "hp.stdlib.<name>: the annex's standard-"
                  "library module of that name.",
                  sizeof(PyObject), AttributeTable(),
                  {
                      {Py_tp_getattro, reinterpret_cast<void*>(StdlibGetattro)},
                      {Py_tp_repr, reinterpret_cast<void*>(StdlibRepr)},
                  },
                  InstanceDealloc<>);
  return *def;
}

// hp.iso(*ids): Heapy's iso, given ids (ints, as id() in the target gives
// them; target objects never reach the annex) or IdSets: the live objects
// among them, as one IdSet. hp.iso('expr'): the objects the expression
// names, read in the target without running its code (hp_iso.cc).
PyObject* HpIso(PyObject* self, PyObject* args) {
  if (PyTuple_GET_SIZE(args) == 1 &&
      PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
    // hp.iso('cache.entries[3]'): read in the target (hp_iso.cc).
    return HpIsoExpr(SessionOf(self), PyTuple_GET_ITEM(args, 0));
  }
  std::vector<uintptr_t> addresses;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
    PyObject* a = PyTuple_GET_ITEM(args, i);
    if (PyLong_Check(a)) {
      unsigned long long v = PyLong_AsUnsignedLongLong(a);
      if ((v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) ||
          v == 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "iso(): an id is an int > 0, as id() in the target "
                        "gives");
        return nullptr;
      }
      addresses.push_back(static_cast<uintptr_t>(v));
      continue;
    }
    KindedSet* set = IdSetArg(a);
    if (set == nullptr) {
      PyErr_Clear();
      return PyErr_Format(
          PyExc_TypeError,
          "iso() takes ids (ints, as id() in the target gives), IdSets, or "
          "one expression (a str), not %.100s; target objects never reach "
          "the annex",
          Py_TYPE(a)->tp_name);
    }
    addresses.insert(addresses.end(), set->addresses.begin(),
                     set->addresses.end());
  }
  HeapView* view = ViewOf(SessionOf(self));
  if (view == nullptr) return nullptr;
  auto set = view->FromAddresses(std::move(addresses));
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(SessionOf(self), std::move(*set));
}

PyObject* HpDir(PyObject* self, PyObject*) {
  return Py_BuildValue(
      "[sssssssssssssssssssssssssssssss]", "Anything", "Clodo", "Id", "Idset",
      "Module", "Nothing", "Prod", "Rcs", "Root", "Size", "Type", "Unity",
      "Via", "clearref", "doc", "heap", "heapu", "idset", "iso", "load",
      "loadall", "memory", "pause_limit", "pb", "record", "setref",
      "setrelheap", "setrelheapu", "stacks", "stdlib", "threads");
}

PyObject* HpRepr(PyObject*) {
  return PyUnicode_FromString(
      "<hp: Annex session; dir(hp) lists services, help(hp) explains>");
}

PyMethodDef kHpMethods[] = {
    {"heap",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpHeap)),
     METH_VARARGS | METH_KEYWORDS,
     "heap(*, values=True) -> IdSet: objects reachable from the target's "
     "roots (since the reference point, when set), partitioned by type. "
     "Each object's size is sys.getsizeof plus, for an instance, its "
     "attribute values block, which sys.getsizeof leaves out; "
     "values=False: sys.getsizeof's sizes alone, for this set."},
    {"heapu",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpHeapU)),
     METH_VARARGS | METH_KEYWORDS,
     "heapu(*, garbage=None) -> IdSet: objects tracked by the target's gc "
     "but unreachable from its roots (nothing is collected). garbage=True: "
     "only the cyclic garbage a gc.collect() would free; garbage=False: "
     "only what it would keep (held by C references; Heapy's heapu())."},
    {"record",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpRecord)),
     METH_VARARGS | METH_KEYWORDS,
     "record(*, format='stat', top=20) -> str: one heap record of the whole "
     "heap (one walk): partitions by Clodo and by type (top rows, the rest "
     "'<Other>'), totals, the walk's pause, RSS and labels, as Heapy stat "
     "records ('stat') or a JSON line ('jsonl'); docs/recording.md."},
    {"iso", HpIso, METH_VARARGS,
     "iso(*ids) -> IdSet: Heapy's iso, given ids (id() in the target) or "
     "IdSets: the live objects among them. iso('expr'): the objects that "
     "names, .attributes and [str/int] subscripts reach from the target's "
     "__main__ (or a module), read without running target code; a tuple "
     "of such paths gives several."},
    {"idset", HpIdSet, METH_O,
     "idset(ids) -> IdSet: the objects with those ids (id() in the target) "
     "that are alive now."},
    {"setref",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpSetRef)),
     METH_VARARGS | METH_KEYWORDS,
     "setref(reachable=None, unreachable=None): this hp's reference point. "
     "Later heap() calls show only objects created since and still alive "
     "(heapu() likewise); an IdSet given as reachable/unreachable is used as "
     "that reference instead of the current heap()/heapu()."},
    {"setrelheap",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpSetRelHeap)),
     METH_VARARGS | METH_KEYWORDS,
     "setrelheap(reference=None): heap()'s reference only."},
    {"setrelheapu",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpSetRelHeapU)),
     METH_VARARGS | METH_KEYWORDS,
     "setrelheapu(reference=None): heapu()'s reference only."},
    {"clearref", HpClearRef, METH_NOARGS,
     "clearref(): forget the reference point (heap() shows everything)."},
    {"threads", HpThreads, METH_NOARGS,
     "threads() -> str: the target's threads (ident, native id, name, "
     "innermost frame)."},
    {"stacks", HpStacks, METH_NOARGS,
     "stacks() -> str: the Python stack of every target thread, most recent "
     "call last."},
    {"load",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpLoadMethod)),
     METH_VARARGS | METH_KEYWORDS,
     "load(source, *, special=False) -> Stat: from an open file, its next "
     "stat record (the file is left after it; EOFError at its end), so a "
     "loop of load(f) reads a file of several dumps; from a path or the "
     "text of a dump, the last record. Read with bounds (1 MiB lines, "
     "32 MiB records); devices and FIFOs only with special=True."},
    {"loadall",
     reinterpret_cast<PyCFunction>(
         reinterpret_cast<void (*)()>(HpLoadAllMethod)),
     METH_VARARGS | METH_KEYWORDS,
     "loadall(source, *, special=False) -> [Stat]: every stat record in "
     "source, oldest first (32 MiB in all at most)."},
    {"pb", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpPb)),
     METH_VARARGS | METH_KEYWORDS,
     "pb(file, out=None, title='', top=8): Heapy's profile browser as a "
     "page: writes `annex report`'s HTML page of the records in file (a "
     "path or a list; x.dump, annex record) to out (default file + "
     "'.html'), and prints where; open it in a browser."},
    {"memory",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(HpMemory)),
     METH_VARARGS | METH_KEYWORDS,
     "memory(rows=20, trim=False) -> str: the sets this hp keeps in the "
     "annex (the host's memory), largest first, with their bytes, the "
     "heap engine's buffers kept for the next question, the memory "
     "budget's limits (per hp and in total), and how many objects the "
     "identity watch follows for all hp objects. trim=True first gives "
     "the engine's kept buffers back to the host and says how much."},
    {"__dir__", HpDir, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

const TypeDef& HpDef() {
  static const TypeDef* def =
      new TypeDef("annex.Hp", kHpDoc, sizeof(HpObject),
                  AttributeTable(kHpGetSet, kHpMethods),
                  {
                      {Py_tp_getattro, reinterpret_cast<void*>(HpGetattro)},
                      {Py_tp_repr, reinterpret_cast<void*>(HpRepr)},
                  },
                  InstanceDealloc<HpClear>);
  return *def;
}

// The module's state: what AnnexObject() serves, by AnnexName.
struct ModuleState {
  PyObject* objects[static_cast<size_t>(AnnexName::kCount)];
};
// The names the module gives them (its attributes at exec), by AnnexName.
constexpr const char* kAnnexNames[] = {
    "Hp",          "Text",         "Stdlib",   "IdSet",
    "Kind",        "KindFactory",  "SoKind",   "Partition",
    "PartRow",     "Stat",         "StatRow",  "More",
    "_stat_files", "Paths",        "Root",     "ReferencePattern",
    "ById",        "MappingProxy", "prod_text"};
static_assert(std::size(kAnnexNames) == static_cast<size_t>(AnnexName::kCount));

ModuleState* StateOf(PyObject* module) {
  return static_cast<ModuleState*>(PyModule_GetState(module));
}

// Each interpreter's `annex` module, borrowed: sys.modules and the
// instances of its types hold it; ModuleFree takes it out when it ends,
// so a later call makes a new one. Keyed by the interpreter's id, which
// CPython never reuses (an ended annex's PyInterpreterState address may
// be a new annex's after a fork). Where: any thread, GIL held.
struct Registry {
  absl::Mutex mu;
  std::vector<std::pair<int64_t, PyObject*>> modules ABSL_GUARDED_BY(mu);
};
Registry& Modules() {
  static auto* registry = new Registry();
  return *registry;
}

// gc support: the state holds the types, whose instances (and the types
// themselves, through ht_module) hold the module.
int ModuleTraverse(PyObject* module, visitproc visit, void* arg) {
  ModuleState* state = StateOf(module);
  if (state == nullptr) return 0;
  for (PyObject* o : state->objects) Py_VISIT(o);
  return 0;
}
int ModuleClear(PyObject* module) {
  ModuleState* state = StateOf(module);
  if (state == nullptr) return 0;
  for (PyObject*& o : state->objects) Py_CLEAR(o);
  return 0;
}
void ModuleFree(void* module) {
  {
    Registry& r = Modules();
    absl::MutexLock lock(&r.mu);
    r.modules.erase(
        std::remove_if(r.modules.begin(), r.modules.end(),
                       [module](const auto& e) { return e.second == module; }),
        r.modules.end());
  }
  ModuleClear(static_cast<PyObject*>(module));
}

// Module exec slot: one heap type per interpreter (multi-phase init).
int AddTypes(PyObject* module);
int ModuleExec(PyObject* module) {
  if (AddTypes(module) < 0) return -1;
  // Kept in the state from now on: no run-time lookup by name.
  ModuleState* state = StateOf(module);
  for (size_t i = 0; i < std::size(kAnnexNames); ++i) {
    state->objects[i] = PyObject_GetAttrString(module, kAnnexNames[i]);
    if (state->objects[i] == nullptr) return -1;
  }
  return 0;
}

int AddTypes(PyObject* module) {
  // Instances of Hp are made only by NewHp(), never from Python; Text is
  // a str that prints without quotes, made from Python too.
  if (HpDef().AddTo(module, "Hp") == nullptr ||
      TextDef().AddTo(module, "Text", &PyUnicode_Type,
                      /*constructible=*/true) == nullptr ||
      StdlibDef().AddTo(module, "Stdlib") == nullptr) {
    return -1;
  }
  // Its attributes from hp_values.cc, hp_retention.cc and hp_kinds_sets.cc.
  if (IdSetDef().AddTo(module, "IdSet") == nullptr) return -1;
  // annex.Paths, annex.ById, ... (python/*.py): hp_retention.cc.
  if (AddRetentionClasses(module) < 0) return -1;
  // Stats (x.stat, annex.Stat, annex.More, hp.load): hp_stat.cc.
  if (AddStatTypes(module) < 0) return -1;
  // Classifiers and kinds (x.byclodo, hp.Type, ...): hp_kinds*.cc.
  return AddKindTypes(module);
}

PyModuleDef_Slot kModuleSlots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(ModuleExec)},
    {0, nullptr},
};

PyModuleDef kModuleDef = {
    PyModuleDef_HEAD_INIT,
    "annex",
    "Annex's own module in the annex interpreter (built into the binary).",
    sizeof(ModuleState),
    nullptr,
    kModuleSlots,
    ModuleTraverse,
    ModuleClear,
    ModuleFree,
};

// The `annex` module of the current interpreter (borrowed, see Modules()),
// made, executed and put in sys.modules on first use; nullptr with an
// error set. Where: GIL held, the interpreter that uses it current.
PyObject* AnnexModule() {
  const int64_t interp = PyInterpreterState_GetID(PyInterpreterState_Get());
  if (interp < 0) return nullptr;
  Registry& r = Modules();
  {
    absl::MutexLock lock(&r.mu);
    for (const auto& [owner, module] : r.modules) {
      if (owner == interp) return module;
    }
  }
  PyRef machinery = PyRef::Steal(PyImport_ImportModule("importlib.machinery"));
  if (!machinery) return nullptr;
  PyRef spec = PyRef::Steal(PyObject_CallMethod(machinery.get(), "ModuleSpec",
                                                "sO", "annex", Py_None));
  if (!spec) return nullptr;
  PyRef module = PyRef::Steal(PyModule_FromDefAndSpec(&kModuleDef, spec.get()));
  if (!module || PyModule_ExecDef(module.get(), &kModuleDef) < 0 ||
      PyDict_SetItemString(PyImport_GetModuleDict(), "annex", module.get()) <
          0) {
    return nullptr;
  }
  absl::MutexLock lock(&r.mu);
  r.modules.emplace_back(interp, module.get());
  return module.get();  // sys.modules holds it
}

}  // namespace

PyObject* AnnexObject(AnnexName name) {
  PyObject* module = AnnexModule();
  if (module == nullptr) return nullptr;
  PyObject* o = StateOf(module)->objects[static_cast<size_t>(name)];
  if (o == nullptr) {
    // Only between the gc's m_clear and the module's end.
    PyErr_SetString(PyExc_RuntimeError, "the annex module is being torn down");
  }
  return o;
}

bool IsAnnexType(PyObject* o, AnnexName name) {
  PyTypeObject* type = AnnexType(name);
  if (type == nullptr) {
    PyErr_Clear();
    return false;
  }
  return Py_TYPE(o) == type;
}

KindedSet* IdSetArg(PyObject* obj) {
  PyTypeObject* type = AnnexType(AnnexName::kIdSet);
  if (type == nullptr) return nullptr;
  if (Py_TYPE(obj) != type) {
    PyErr_Format(PyExc_TypeError, "expected an annex.IdSet, not %.100s",
                 Py_TYPE(obj)->tp_name);
    return nullptr;
  }
  return &SetOf(obj);
}

}  // namespace annex::glue::module

namespace annex::glue {

using module::AnnexName;
using module::HpObject;
using module::IsAnnexType;
using module::PauseLimitOf;
using module::PyRef;
using module::RaiseStatus;

PyObject* NewHp(Session* session) {
  PyTypeObject* type = AnnexType(AnnexName::kHp);
  if (type == nullptr) return nullptr;
  PyRef hp = PyRef::Steal(PyType_GenericAlloc(type, 0));
  if (!hp) return nullptr;
  auto* h = reinterpret_cast<HpObject*>(hp.get());
  h->session = session;
  h->owner = 0;
  h->ref = nullptr;
  h->pause_limit_s = std::nan("");
  absl::StatusOr<MemoryBudget*> budget = session->Get<MemoryBudget>();
  if (!budget.ok()) {
    hp.reset();  // freed before the exception is set
    return RaiseStatus(budget.status());
  }
  h->owner = (*budget)->NewOwner();
  return hp.release();
}

void ActFor(Session* session, PyObject* hp) {
  const HpObject* h = nullptr;
  if (hp != nullptr && IsAnnexType(hp, AnnexName::kHp) &&
      reinterpret_cast<HpObject*>(hp)->session == session) {
    h = reinterpret_cast<HpObject*>(hp);
  }
  if (MemoryBudget* budget = session->Peek<MemoryBudget>()) {
    budget->SetCurrentOwner(h != nullptr ? h->owner : 0);
  }
  // Not built yet: it starts with the default, and an hp that set its own
  // limit built it then.
  if (HeapView* view = session->Peek<HeapView>()) {
    if (h == nullptr) {
      view->set_pause_limit(view->default_pause_limit(),
                            "Options::question_pause_limit");
    } else {
      view->set_pause_limit(std::isnan(h->pause_limit_s)
                                ? view->default_pause_limit()
                                : PauseLimitOf(h->pause_limit_s),
                            "hp.pause_limit");
    }
  }
}

std::shared_ptr<const ReferencePoint> HpReference(PyObject* hp) {
  if (!IsAnnexType(hp, AnnexName::kHp)) return nullptr;
  auto* h = reinterpret_cast<HpObject*>(hp);
  return h->ref == nullptr ? nullptr : *h->ref;
}

}  // namespace annex::glue
