// hp's retention surface on IdSet: why is it alive, and what would go
// with it. Names follow Heapy (guppy3) where it has them: referrers,
// referents, dominos, domisize (hp.cc), imdom, rp / get_rp, sp / shpaths /
// get_shpaths, pathsin, pathsout, Root. Every answer walks the target's heap
// again through glue::RetentionView (retention_view.h). The Python classes
// of the answers (annex.Path, annex.Paths, annex.Root) are in
// python/paths.py, annex.ReferencePattern in python/refpat.py, compiled
// into the binary (//tools:embed_file.bzl).
#include <Python.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "glue/module/hp_internal.h"
#include "glue/module/paths_py.h"
#include "glue/module/refpat_py.h"
#include "glue/module/values_py.h"
#include "glue/retention_view.h"

namespace annex::glue::module {
namespace {

// All functions here: Where: annex thread, GIL held, annex current.

RetentionView *ViewFor(PyObject *idset) {
  auto view = IdSetSession(idset)->Get<RetentionView>();
  if (!view.ok()) {
    RaiseStatus(view.status());
    return nullptr;
  }
  return *view;
}

// Wraps a KindedSet answer of `self`'s session as an IdSet.
PyObject *SetAnswer(PyObject *self, absl::StatusOr<KindedSet> answer) {
  if (!answer.ok()) return RaiseStatus(answer.status());
  return NewIdSet(IdSetSession(self), std::move(*answer));
}

PyObject *Referrers(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return SetAnswer(self, view->Referrers(*IdSetArg(self)));
}

PyObject *Referents(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return SetAnswer(self, view->Referents(*IdSetArg(self)));
}

PyObject *Dominos(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return SetAnswer(self, view->Dominated(*IdSetArg(self)));
}

PyObject *Imdom(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return SetAnswer(self, view->ImmediateDominators(*IdSetArg(self)));
}

// --- Reference pattern ---

// An int argument of get_rp within [low, high] into `out`; None keeps it.
// false with TypeError / ValueError set.
template <typename T>
bool IntArg(PyObject *obj, const char *name, long low, long high, T *out) {
  if (obj == Py_None) return true;
  if (!PyLong_Check(obj) || PyBool_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name,
                 Py_TYPE(obj)->tp_name);
    return false;
  }
  const long v = PyLong_AsLong(obj);
  if ((v == -1 && PyErr_Occurred()) || v < low || v > high) {
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError, "%s must be between %ld and %ld", name, low,
                 high);
    return false;
  }
  *out = static_cast<T>(v);
  return true;
}

// get_rp's stopkind: None (Heapy's default), a kind (hp.Type('dict'),
// kind | kind), a kind name or an iterable of names (empty: stop nowhere).
bool ParseStopKind(PyObject *self, PyObject *stopkind,
                   PatternOptions *options) {
  if (stopkind == Py_None) return true;
  options->stop_default = false;
  if (IsKindObject(stopkind)) {
    options->stop_filter = KindFilter(IdSetSession(self), stopkind);
    return options->stop_filter != nullptr;
  }
  PyErr_Clear();
  constexpr const char *kShape =
      "stopkind must be a kind (e.g. hp.Type('dict') | hp.Type('list')), "
      "a kind name or an iterable of kind names, not %.100s";
  if (PyUnicode_Check(stopkind)) {
    std::string name;
    if (!NameArg(stopkind, "stopkind", &name)) return false;
    options->stop_kinds.push_back(name);
    return true;
  }
  PyRef it = PyRef::Steal(PyObject_GetIter(stopkind));
  if (!it) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, kShape, Py_TYPE(stopkind)->tp_name);
    return false;
  }
  while (PyRef item = PyRef::Steal(PyIter_Next(it.get()))) {
    std::string name;
    if (!PyUnicode_Check(item.get()) ||
        !NameArg(item.get(), "stopkind", &name)) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "stopkind must hold kind names (str)");
      }
      return false;
    }
    options->stop_kinds.push_back(name);
  }
  return !PyErr_Occurred();
}

// get_rp's ref (Heapy's): None, 'gc' or 'gcx' (the referrers the
// target's gc reports; Annex's own objects are never among them, so both
// are the same) or 'imdom' (as imdom=True). A callable is refused: the
// pattern is made inside one heap question, where no annex code runs.
bool ParseRef(PyObject *ref, int *imdom, PatternOptions *options) {
  if (ref == Py_None) return true;
  if (PyUnicode_Check(ref)) {
    if (PyUnicode_CompareWithASCIIString(ref, "gc") == 0 ||
        PyUnicode_CompareWithASCIIString(ref, "gcx") == 0) {
      options->gc_referrers = true;
      return true;
    }
    if (PyUnicode_CompareWithASCIIString(ref, "imdom") == 0) {
      *imdom = 1;
      return true;
    }
  }
  if (PyCallable_Check(ref)) {
    PyErr_SetString(PyExc_TypeError,
                    "get_rp(ref=callable) is not offered: the pattern is made "
                    "inside one heap question, where no Python code runs; "
                    "ref is None (referrers), 'gc', 'gcx' or 'imdom'");
    return false;
  }
  PyErr_Format(PyExc_ValueError,
               "get_rp(ref=%R): ref is None (referrers), 'gc' or 'gcx' (the "
               "referrers the target's gc reports) or 'imdom'",
               ref);
  return false;
}

bool IsRoot(PyObject *obj);
bool ParseNodes(PyObject *obj, std::vector<uintptr_t> *out, const char *what);

PyObject *AddressList(const std::vector<uintptr_t> &addresses);

// The annex.ReferencePattern of an answer: rows as (name, depth, parent,
// mark, seen, kind, count, size, IdSet, first addresses, dropped).
PyObject *MakePattern(PyObject *self, PatternResult result,
                      const PatternOptions &options) {
  PyRef rows = PyRef::Steal(PyTuple_New(result.rows.size()));
  if (!rows) return nullptr;
  for (size_t i = 0; i < result.rows.size(); ++i) {
    PatternRow &r = result.rows[i];
    const size_t count = r.set.count();
    const uint64_t size = r.set.total_size();
    std::vector<uintptr_t> first;
    for (size_t k = 0; k < count && k < 8; ++k)
      first.push_back(r.set.addresses[k]);
    PyRef first_list = PyRef::Steal(AddressList(first));
    if (!first_list) return nullptr;
    PyRef preview = PyRef::Steal(PyList_AsTuple(first_list.get()));
    if (!preview) return nullptr;
    PyRef set = PyRef::Steal(NewIdSet(IdSetSession(self), std::move(r.set)));
    if (!set) return nullptr;
    PyObject *row = Py_BuildValue(
        "(siiCis#nKOnO)", r.label.c_str(), r.depth, r.parent,
        static_cast<int>(r.mark), r.seen, r.kind.data(),
        static_cast<Py_ssize_t>(r.kind.size()), static_cast<Py_ssize_t>(count),
        static_cast<unsigned long long>(size), set.get(),
        static_cast<Py_ssize_t>(r.dropped), preview.get());
    if (row == nullptr) return nullptr;
    PyTuple_SET_ITEM(rows.get(), i, row);  // steals it
  }
  // What shows instead of rows: no member of the set is alive now.
  const std::string empty =
      result.rows.empty() ? "(no member of the set is alive now)" : "";
  PyObject *type = AnnexObject(AnnexName::kReferencePattern);
  if (type == nullptr) return nullptr;
  return PyObject_CallFunction(
      type, "Os#OOns#", self, result.header.data(),
      static_cast<Py_ssize_t>(result.header.size()), rows.get(),
      result.truncated ? Py_True : Py_False,
      static_cast<Py_ssize_t>(options.max_rows), empty.data(),
      static_cast<Py_ssize_t>(empty.size()));
}

// get_rp(depth=7, er=None, imdom=False, bf=False, src=None, stopkind=None,
// nocyc=False, *, max_children=10, max_rows=1000): Heapy's arguments, in
// its order.
PyObject *GetRp(PyObject *self, PyObject *args, PyObject *kwargs) {
  static const char *kKeywords[] = {"depth",        "er",       "imdom", "bf",
                                    "src",          "stopkind", "nocyc", "ref",
                                    "max_children", "max_rows", nullptr};
  PyObject *depth = Py_None, *er = Py_None, *src = Py_None;
  PyObject *stopkind = Py_None, *max_children = Py_None, *max_rows = Py_None;
  PyObject *ref = Py_None;
  int imdom = 0, bf = 0, nocyc = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOppOOpO$OO:get_rp",
                                   const_cast<char **>(kKeywords), &depth, &er,
                                   &imdom, &bf, &src, &stopkind, &nocyc, &ref,
                                   &max_children, &max_rows)) {
    return nullptr;
  }
  PatternOptions options;
  if (!ParseRef(ref, &imdom, &options)) return nullptr;
  options.imdom = imdom != 0;
  options.breadth_first = bf != 0;
  options.nocyc = nocyc != 0;
  if (!IntArg(depth, "depth", 0, 1000, &options.depth) ||
      !IntArg(max_children, "max_children", 1, 26, &options.max_children) ||
      !IntArg(max_rows, "max_rows", 1, 1000000, &options.max_rows)) {
    return nullptr;
  }
  if (er != Py_None && !ErArg(er, "get_rp(er=)", &options.er)) {
    return nullptr;
  }
  if (src != Py_None && !IsRoot(src)) {
    options.sources.emplace();
    if (!ParseNodes(src, &*options.sources, "src")) return nullptr;
  }
  if (options.imdom && options.sources) {
    PyErr_SetString(PyExc_ValueError,
                    "get_rp(imdom=True) follows the dominators from the roots: "
                    "not with src");
    return nullptr;
  }
  if (options.imdom && options.gc_referrers) {
    PyErr_SetString(PyExc_ValueError,
                    "get_rp(ref='gc') follows the gc's referrers: not with "
                    "imdom=True");
    return nullptr;
  }
  if (!ParseStopKind(self, stopkind, &options)) return nullptr;
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  auto result = view->ReferencePattern(*IdSetArg(self), options);
  if (!result.ok()) return RaiseStatus(result.status());
  return MakePattern(self, std::move(*result), options);
}

// x._rp_links(rows): the links of rp.paths (RetentionView::
// PatternPathLinks) for `rows`, a sequence of IdSets from a row up to row
// 0: ([[(from, to, text), ...] per pair of rows], [(address, brief), ...]
// for the last row).
PyObject *RpLinks(PyObject *self, PyObject *arg) {
  PyRef seq =
      PyRef::Steal(PySequence_Fast(arg, "_rp_links() takes a list of IdSets"));
  if (!seq) return nullptr;
  std::vector<const KindedSet *> rows;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.get()); ++i) {
    KindedSet *set = IdSetArg(PySequence_Fast_GET_ITEM(seq.get(), i));
    if (set == nullptr) return nullptr;
    rows.push_back(set);
  }
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  auto links = view->PatternPathLinks(rows);
  seq.reset();  // after the walk: the rows' sets live in `seq`'s IdSets
  if (!links.ok()) return RaiseStatus(links.status());
  PyRef pairs = PyRef::Steal(PyList_New(0));
  if (!pairs) return nullptr;
  for (const std::vector<PatternLinks::Link> &pair : links->links) {
    PyRef list = PyRef::Steal(PyList_New(0));
    if (!list) return nullptr;
    for (const PatternLinks::Link &l : pair) {
      if (!ListAppendNew(
              list.get(),
              Py_BuildValue("(KKs#)", static_cast<unsigned long long>(l.from),
                            static_cast<unsigned long long>(l.to),
                            l.text.data(),
                            static_cast<Py_ssize_t>(l.text.size())))) {
        return nullptr;
      }
    }
    if (!ListAppendNew(pairs.get(), list.release())) return nullptr;
  }
  PyRef last = PyRef::Steal(PyList_New(0));
  if (!last) return nullptr;
  for (const auto &[address, brief] : links->last) {
    if (!ListAppendNew(
            last.get(),
            Py_BuildValue("(Ks#)", static_cast<unsigned long long>(address),
                          brief.data(),
                          static_cast<Py_ssize_t>(brief.size())))) {
      return nullptr;
    }
  }
  return PyTuple_Pack(2, pairs.get(), last.get());
}

PyObject *Rp(PyObject *self, void *) {
  PyRef args = PyRef::Steal(PyTuple_New(0));
  if (!args) return nullptr;
  return GetRp(self, args.get(), nullptr);
}

// --- Shortest paths ---

// Addresses from None, an IdSet or an iterable of ints, appended to `out`;
// `what` names the argument. False with TypeError set otherwise.
bool ParseNodes(PyObject *obj, std::vector<uintptr_t> *out,
                const char *what = "avoid_nodes") {
  if (obj == Py_None) return true;
  if (KindedSet *set = IdSetArg(obj)) {
    out->insert(out->end(), set->addresses.begin(), set->addresses.end());
    return true;
  }
  PyErr_Clear();
  PyRef it = PyRef::Steal(PyObject_GetIter(obj));
  if (!it) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "%s must be an IdSet or an iterable of addresses "
                 "(int), not %.100s",
                 what, Py_TYPE(obj)->tp_name);
    return false;
  }
  while (PyRef item = PyRef::Steal(PyIter_Next(it.get()))) {
    const bool is_int = PyLong_Check(item.get());
    const unsigned long long a =
        is_int ? PyLong_AsUnsignedLongLong(item.get()) : 0;
    if (!is_int || PyErr_Occurred()) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError,
                   "%s must hold addresses (non-negative ints)", what);
      return false;
    }
    out->push_back(static_cast<uintptr_t>(a));
  }
  return !PyErr_Occurred();
}

// (from, to) address pairs from an iterable, appended to `out`.
bool ParseEdges(PyObject *obj,
                std::vector<std::pair<uintptr_t, uintptr_t>> *out) {
  if (obj == Py_None) return true;
  constexpr const char *kShape =
      "avoid_edges must be an iterable of (from, to) address pairs, e.g. "
      "p.edges_at(-1) of a Paths p";
  PyRef it = PyRef::Steal(PyObject_GetIter(obj));
  if (!it) {
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError, kShape);
    return false;
  }
  while (PyRef ref = PyRef::Steal(PyIter_Next(it.get()))) {
    PyObject *item = ref.get();
    bool ok = PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2 &&
              PyLong_Check(PyTuple_GET_ITEM(item, 0)) &&
              PyLong_Check(PyTuple_GET_ITEM(item, 1));
    unsigned long long a = 0, b = 0;
    if (ok) {
      a = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(item, 0));
      b = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(item, 1));
      ok = !PyErr_Occurred();
    }
    if (!ok) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError, kShape);
      return false;
    }
    out->push_back({static_cast<uintptr_t>(a), static_cast<uintptr_t>(b)});
  }
  return !PyErr_Occurred();
}

const char *KindName(heap::EdgeKind kind) {
  switch (kind) {
    case heap::EdgeKind::kAttribute:
      return "attribute";
    case heap::EdgeKind::kDict:
      return "dict";
    case heap::EdgeKind::kDictValue:
      return "dict_value";
    case heap::EdgeKind::kDictKey:
      return "dict_key";
    case heap::EdgeKind::kIndex:
      return "index";
    case heap::EdgeKind::kSetMember:
      return "set_member";
    case heap::EdgeKind::kCellContents:
      return "cell_contents";
    case heap::EdgeKind::kClosureCell:
      return "closure_cell";
    case heap::EdgeKind::kFrameLocal:
      return "frame_local";
    case heap::EdgeKind::kType:
      return "type";
    case heap::EdgeKind::kInternal:
      return "internal";
  }
  return "internal";
}

// (kind, label, from, to) of one edge: a new reference or nullptr.
PyObject *EdgeTuple(const PathEdge &e) {
  return Py_BuildValue("(ssKK)", KindName(e.kind), e.label.c_str(),
                       static_cast<unsigned long long>(e.from),
                       static_cast<unsigned long long>(e.to));
}

// A list of ints from addresses: a new reference or nullptr.
PyObject *AddressList(const std::vector<uintptr_t> &addresses) {
  PyRef list = PyRef::Steal(PyList_New(addresses.size()));
  if (!list) return nullptr;
  for (size_t i = 0; i < addresses.size(); ++i) {
    PyObject *a = PyLong_FromUnsignedLongLong(addresses[i]);
    if (a == nullptr) return nullptr;
    PyList_SET_ITEM(list.get(), i, a);  // steals it
  }
  return list.release();
}

PyObject *EdgePairList(
    const std::vector<std::pair<uintptr_t, uintptr_t>> &edges) {
  PyRef list = PyRef::Steal(PyList_New(edges.size()));
  if (!list) return nullptr;
  for (size_t i = 0; i < edges.size(); ++i) {
    PyObject *t =
        Py_BuildValue("(KK)", static_cast<unsigned long long>(edges[i].first),
                      static_cast<unsigned long long>(edges[i].second));
    if (t == nullptr) return nullptr;
    PyList_SET_ITEM(list.get(), i, t);  // steals it
  }
  return list.release();
}

// An absl::uint128 as a Python int: a new reference or nullptr.
PyObject *IntOf(absl::uint128 v) {
  PyRef high =
      PyRef::Steal(PyLong_FromUnsignedLongLong(absl::Uint128High64(v)));
  PyRef shift = PyRef::Steal(PyLong_FromLong(64));
  if (!high || !shift) return nullptr;
  PyRef shifted = PyRef::Steal(PyNumber_Lshift(high.get(), shift.get()));
  PyRef low = PyRef::Steal(PyLong_FromUnsignedLongLong(absl::Uint128Low64(v)));
  if (!shifted || !low) return nullptr;
  return PyNumber_Or(shifted.get(), low.get());
}

// One path's (root_name, edges, root_edge, text), each edge (kind, label,
// from, to): a new reference or nullptr. Where: annex current, GIL held.
PyObject *PathTuple(const RetentionPath &p) {
  PyRef edges = PyRef::Steal(PyTuple_New(p.edges.size()));
  if (!edges) return nullptr;
  for (size_t k = 0; k < p.edges.size(); ++k) {
    PyObject *e = EdgeTuple(p.edges[k]);
    if (e == nullptr) return nullptr;
    PyTuple_SET_ITEM(edges.get(), k, e);  // steals it
  }
  return Py_BuildValue("(sOss#)", p.root_name.c_str(), edges.get(),
                       p.root_edge.c_str(), p.text.data(),
                       static_cast<Py_ssize_t>(p.text.size()));
}

// The paths of an answer stay C++ data until Python asks for one: a Paths
// of 40 000 paths made a million annex objects up front (tuples and strs
// per edge), most of get_shpaths(limit=0)'s time, for a page of ten lines.
// annex.Paths gets `fetch`, a builtin bound to a capsule that owns them:
// fetch(i) is PathTuple of path i.
constexpr char kPathStore[] = "annex.paths";

void FreePathStore(PyObject *capsule) {
  delete static_cast<std::vector<RetentionPath> *>(
      PyCapsule_GetPointer(capsule, kPathStore));
}

// fetch(i). Where: annex current, GIL held.
PyObject *FetchPath(PyObject *capsule, PyObject *index) {
  auto *paths = static_cast<std::vector<RetentionPath> *>(
      PyCapsule_GetPointer(capsule, kPathStore));
  if (paths == nullptr) return nullptr;
  const Py_ssize_t i = PyNumber_AsSsize_t(index, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return nullptr;
  if (i < 0 || static_cast<size_t>(i) >= paths->size()) {
    return PyErr_Format(PyExc_IndexError, "path %zd out of range (%zu)", i,
                        paths->size());
  }
  return PathTuple((*paths)[i]);
}

PyMethodDef kFetchPath = {"fetch_path", FetchPath, METH_O,
                          "fetch_path(i) -> (root, edges, root_edge, text)"};

// A new reference to fetch (owning `paths`), or nullptr.
PyObject *PathFetcher(std::vector<RetentionPath> paths) {
  auto *store = new std::vector<RetentionPath>(std::move(paths));
  PyRef capsule = PyRef::Steal(PyCapsule_New(store, kPathStore, FreePathStore));
  if (!capsule) {
    delete store;
    return nullptr;
  }
  return PyCFunction_New(&kFetchPath, capsule.get());
}

// The annex.Paths object for an answer.
PyObject *MakePaths(PyObject *self, PathsResult &&result,
                    const PathsOptions &options) {
  const bool from_src = options.sources.has_value();
  // What shows instead of paths when there are none.
  std::string empty;
  if (result.live_members == 0) {
    empty = "(no member of the set is reachable now)";
  } else if (from_src && result.live_sources == 0) {
    empty = "(no path: no object of src is alive now)";
  } else if (from_src) {
    empty = "(no path from src)";
  } else if (result.live_members == result.unreachable_members) {
    empty = absl::StrFormat(
        "(no path from the roots: the %d live member%s %s not reachable "
        "from them (heapu: held by C references or cyclic garbage); "
        "x.referrers shows what holds %s)",
        result.unreachable_members, result.unreachable_members == 1 ? "" : "s",
        result.unreachable_members == 1 ? "is" : "are",
        result.unreachable_members == 1 ? "it" : "them");
  } else {
    empty = "(no path from the roots)";
  }
  // A line under the paths.
  std::string note;
  if (result.unreachable_members > 0 &&
      result.live_members > result.unreachable_members) {
    note = absl::StrFormat(
        "<%d more live member%s not reachable from the roots (heapu): no "
        "path; see x.referrers>",
        result.unreachable_members, result.unreachable_members == 1 ? "" : "s");
  }
  std::vector<std::pair<uintptr_t, uintptr_t>> avoided = options.avoid_edges;
  avoided.insert(avoided.end(), result.avoided_edges.begin(),
                 result.avoided_edges.end());
  PyObject *type = AnnexObject(AnnexName::kPaths);
  const Py_ssize_t count = static_cast<Py_ssize_t>(result.paths.size());
  PyRef paths = PyRef::Steal(PathFetcher(std::move(result.paths)));
  PyRef numpaths = PyRef::Steal(IntOf(result.num_paths));
  PyRef nodes = PyRef::Steal(AddressList(options.avoid_nodes));
  PyRef edges = PyRef::Steal(EdgePairList(avoided));
  PyRef src = from_src ? PyRef::Steal(AddressList(*options.sources))
                       : PyRef::NewRef(Py_None);
  if (!type || !paths || !numpaths || !nodes || !edges || !src) return nullptr;
  return PyObject_CallFunction(
      type, "OOnOOOnOs#s#", self, paths.get(), count, numpaths.get(),
      nodes.get(), edges.get(), static_cast<Py_ssize_t>(options.max_paths),
      src.get(), empty.data(), static_cast<Py_ssize_t>(empty.size()),
      note.data(), static_cast<Py_ssize_t>(note.size()));
}

// Steps along a path from a tuple of ints (avoid_levels). False with
// TypeError set otherwise.
bool ParseLevels(PyObject *obj, std::vector<int> *out) {
  if (obj == Py_None) return true;
  PyRef seq = PyRef::Steal(PySequence_Fast(obj, ""));
  if (!seq) {
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError,
                    "avoid_levels must be a sequence of ints (steps along a "
                    "path, 0 the first, -1 the last)");
    return false;
  }
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.get()); ++i) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq.get(), i);
    const long v = PyLong_Check(item) ? PyLong_AsLong(item) : -1;
    if (!PyLong_Check(item) || (v == -1 && PyErr_Occurred()) || v < -1000000 ||
        v > 1000000) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError,
                      "avoid_levels must hold ints (steps along a path, 0 "
                      "the first, -1 the last)");
      return false;
    }
    out->push_back(static_cast<int>(v));
  }
  return true;
}

// True when `obj` is hp.Root (an annex.Root): the roots themselves.
bool IsRoot(PyObject *obj) {
  PyObject *type = AnnexObject(AnnexName::kRoot);
  const int is = type != nullptr ? PyObject_IsInstance(obj, type) : -1;
  PyErr_Clear();
  return is == 1;
}

// get_shpaths(avoid_nodes=None, avoid_edges=(), limit=20, src=None,
// avoid_levels=()).
PyObject *GetShpaths(PyObject *self, PyObject *args, PyObject *kwargs) {
  static const char *kKeywords[] = {"avoid_nodes", "avoid_edges",  "limit",
                                    "src",         "avoid_levels", nullptr};
  PyObject *avoid_nodes = Py_None;
  PyObject *avoid_edges = Py_None;
  PyObject *limit = Py_None;
  PyObject *src = Py_None;
  PyObject *avoid_levels = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOOO:get_shpaths",
                                   const_cast<char **>(kKeywords), &avoid_nodes,
                                   &avoid_edges, &limit, &src, &avoid_levels)) {
    return nullptr;
  }
  PathsOptions options;
  if (!ParseNodes(avoid_nodes, &options.avoid_nodes)) return nullptr;
  if (!ParseEdges(avoid_edges, &options.avoid_edges)) return nullptr;
  if (!ParseLevels(avoid_levels, &options.avoid_levels)) return nullptr;
  if (src != Py_None && !IsRoot(src)) {
    options.sources.emplace();
    if (!ParseNodes(src, &*options.sources, "src")) return nullptr;
  }
  if (limit != Py_None) {
    if (!PyLong_Check(limit)) {
      return PyErr_Format(PyExc_TypeError, "limit must be an int, not %.100s",
                          Py_TYPE(limit)->tp_name);
    }
    const long long n = PyLong_AsLongLong(limit);
    if (n == -1 && PyErr_Occurred()) return nullptr;
    if (n < 0) {
      return PyErr_Format(PyExc_ValueError,
                          "limit must be >= 0 (0: no limit), not %lld", n);
    }
    options.max_paths = static_cast<size_t>(n);
  }
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  auto result = view->PathsTo(*IdSetArg(self), options);
  if (!result.ok()) return RaiseStatus(result.status());
  return MakePaths(self, std::move(*result), options);
}

PyObject *Sp(PyObject *self, void *) {
  PyRef args = PyRef::Steal(PyTuple_New(0));
  if (!args) return nullptr;
  return GetShpaths(self, args.get(), nullptr);
}

// --- pathsin / pathsout ---

PyObject *FormatReferences(
    const absl::StatusOr<std::vector<NamedReference>> &refs) {
  if (!refs.ok()) return RaiseStatus(refs.status());
  std::string text;
  for (size_t i = 0; i < refs->size(); ++i) {
    const NamedReference &r = (*refs)[i];
    absl::StrAppendFormat(&text, "%2d: <%s at 0x%x>%s -> <%s at 0x%x>\n", i,
                          r.from_kind, r.from, r.edge.label, r.to_kind, r.to);
  }
  if (refs->empty()) text = "(no references)\n";
  return NewText(text);
}

PyObject *PathsIn(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return FormatReferences(view->EdgesIn(*IdSetArg(self)));
}

PyObject *PathsOut(PyObject *self, void *) {
  RetentionView *view = ViewFor(self);
  if (view == nullptr) return nullptr;
  return FormatReferences(view->EdgesOut(*IdSetArg(self)));
}

PyGetSetDef kGetSet[] = {
    {"referrers", Referrers, nullptr,
     "the objects that refer directly to a member (members included when "
     "they refer to each other)",
     nullptr},
    {"referents", Referents, nullptr,
     "the objects the members refer to directly", nullptr},
    {"dominos", Dominos, nullptr,
     "the set 'dominated' by x: x and every object that would be freed "
     "with it (reachable only through x); see domisize",
     nullptr},
    {"imdom", Imdom, nullptr,
     "the immediate dominators of x: for each member, the closest object "
     "outside x that every path from the roots to it passes through",
     nullptr},
    {"rp", Rp, nullptr,
     "the reference pattern (annex.ReferencePattern): kinds of referrers, "
     "their referrers, ... to depth 7, stopping at modules, types, their "
     "dicts, code and frames; rows rp.a, rp[i]; see get_rp()",
     nullptr},
    {"sp", Sp, nullptr,
     "the shortest paths from the target's roots to the set's live members "
     "(annex.Paths: 20 fetched, ten a page, numpaths counts all); see "
     "get_shpaths()",
     nullptr},
    {"shpaths", Sp, nullptr, "synonym of sp", nullptr},
    {"pathsin", PathsIn, nullptr,
     "every reference into the set, named: <holder>.edge -> <member>", nullptr},
    {"pathsout", PathsOut, nullptr,
     "every reference out of the set, named: <member>.edge -> <referent>",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef kMethods[] = {
    {"get_shpaths",
     reinterpret_cast<PyCFunction>(
         reinterpret_cast<void (*)(void)>(GetShpaths)),
     METH_VARARGS | METH_KEYWORDS,
     "get_shpaths(*, avoid_nodes=None, avoid_edges=None, limit=20, src=None,\n"
     "            avoid_levels=()) -> Paths\n\n"
     "The shortest paths from the target's roots to the set's live members.\n"
     "avoid_nodes: an IdSet or addresses (ints) no path may pass through;\n"
     "avoid_edges: (from, to) address pairs no path may use (see\n"
     "Paths.edges_at); limit: fetch at most this many paths, 0 for all\n"
     "(numpaths counts all anyway); src: an IdSet or addresses the paths\n"
     "start from instead of the roots (hp.Root: the roots); avoid_levels:\n"
     "steps (0 the first, -1 the last) whose references, over all shortest\n"
     "paths, are avoided too: the next route (Paths.avoided)."},
    {"_rp_links", RpLinks, METH_O,
     "_rp_links(rows): the named references between rows of a reference "
     "pattern (ReferencePattern.paths)."},
    {"get_rp",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(GetRp)),
     METH_VARARGS | METH_KEYWORDS,
     "get_rp(depth=7, er=None, imdom=False, bf=False, src=None, "
     "stopkind=None,\n"
     "       nocyc=False, ref=None, *, max_children=10, max_rows=1000) -> "
     "ReferencePattern\n\n"
     "The reference pattern of the set (Heapy's): its referrers grouped by\n"
     "kind (rows a, b, ...), their referrers (aa, ab, ...), ... to `depth`\n"
     "levels. er: the classifier of the kinds (a name or hp.Type, ...;\n"
     "Clodo); imdom: immediate dominators instead of referrers; bf: rows\n"
     "numbered breadth first; src: an IdSet or addresses, only referrers\n"
     "reachable from it count and its objects end the pattern; stopkind: a\n"
     "kind, kind name or names whose rows are not followed (None: modules,\n"
     "types, their dicts, code, frames; (): nowhere); nocyc: leave out the\n"
     "objects of the rows above; ref: 'gc' (or 'gcx') the referrers the\n"
     "target's gc reports, 'imdom' as imdom=True; max_children: kinds per\n"
     "row (<= 26); max_rows: rows in all. rp.paths(row): the references\n"
     "from a row's objects down to the set's, one path a line."},
    {nullptr, nullptr, 0, nullptr},
};

// hp.Root's lookup: the IdSet of what the root named `name` holds now.
// `capsule` carries the session.
PyObject *RootObjectsOf(PyObject *capsule, PyObject *name) {
  auto *session =
      static_cast<Session *>(PyCapsule_GetPointer(capsule, "annex.Session"));
  if (session == nullptr) return nullptr;
  std::string n;
  if (!NameArg(name, "hp.Root[name]", &n)) return nullptr;
  auto view = session->Get<RetentionView>();
  if (!view.ok()) return RaiseStatus(view.status());
  auto set = (*view)->RootObjects(n);
  // NotFound (no root of that name): KeyError.
  if (!set.ok()) return RaiseStatus(set.status());
  return NewIdSet(session, std::move(*set));
}

PyMethodDef kRootObjectsDef = {"root_objects", RootObjectsOf, METH_O,
                               "The objects a root holds now (hp.Root)."};

}  // namespace

int AddEmbeddedClasses(PyObject *module,
                       std::initializer_list<EmbeddedPy> files,
                       std::initializer_list<const char *> names) {
  PyRef text = PyRef::Steal(PyObject_GetAttrString(module, "Text"));
  if (!text) return -1;
  PyRef ns =
      PyRef::Steal(Py_BuildValue("{sOsOss}", "Text", text.get(), "__builtins__",
                                 PyEval_GetBuiltins(), "__name__", "annex"));
  if (!ns) return -1;
  for (const EmbeddedPy &file : files) {
    PyRef compiled =
        PyRef::Steal(Py_CompileString(file.code, file.path, Py_file_input));
    if (!compiled) return -1;
    PyRef r = PyRef::Steal(PyEval_EvalCode(compiled.get(), ns.get(), ns.get()));
    if (!r) return -1;
  }
  for (const char *name : names) {
    PyObject *cls = PyDict_GetItemString(ns.get(), name);  // borrowed
    if (cls == nullptr) {
      PyErr_Format(PyExc_RuntimeError, "glue/module/python defines no %s",
                   name);
      return -1;
    }
    if (PyModule_AddObjectRef(module, name, cls) < 0) return -1;
  }
  return 0;
}

AttributeTable RetentionAttributes() {
  return AttributeTable(kGetSet, kMethods);
}

int AddRetentionClasses(PyObject *module) {
  return AddEmbeddedClasses(
      module,
      {{embedded::kPathsPy, embedded::kPathsPyPath},
       {embedded::kRefpatPy, embedded::kRefpatPyPath},
       {embedded::kValuesPy, embedded::kValuesPyPath}},
      {"Path", "Paths", "Root", "ReferencePattern", "RefPatRow", "RefPatPaths",
       "ById", "MappingProxy", "prod_text"});
}

PyObject *HpRoot(Session *session) {
  auto view = session->Get<RetentionView>();
  if (!view.ok()) return RaiseStatus(view.status());
  auto roots = (*view)->Roots();
  if (!roots.ok()) return RaiseStatus(roots.status());
  PyRef entries = PyRef::Steal(PyTuple_New(roots->size()));
  if (!entries) return nullptr;
  for (size_t i = 0; i < roots->size(); ++i) {
    const RootEntry &e = (*roots)[i];
    const char *use = e.use == heap::RootUse::kAlias      ? "alias"
                      : e.use == heap::RootUse::kFallback ? "fallback"
                                                          : "start";
    PyObject *t = Py_BuildValue(
        "(ssssKs)", e.name.c_str(), e.edge.c_str(), use, e.alias.c_str(),
        static_cast<unsigned long long>(e.address), e.kind.c_str());
    if (t == nullptr) return nullptr;
    PyTuple_SET_ITEM(entries.get(), i, t);  // steals it
  }
  PyRef capsule =
      PyRef::Steal(PyCapsule_New(session, "annex.Session", nullptr));
  if (!capsule) return nullptr;
  PyRef lookup = PyRef::Steal(PyCFunction_New(&kRootObjectsDef, capsule.get()));
  if (!lookup) return nullptr;
  PyObject *type = AnnexObject(AnnexName::kRoot);
  if (type == nullptr) return nullptr;
  return PyObject_CallFunction(type, "OO", entries.get(), lookup.get());
}

}  // namespace annex::glue::module
