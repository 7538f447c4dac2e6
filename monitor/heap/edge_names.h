// Edge naming: how one Python object holds another, in Python syntax, so a
// path from a root reads like
//   %R.sys.modules['app'].__dict__['registry']['handlers'][3].cache
//
//   Edge e = DescribeEdge(holder, held);   // e.g. {kDictValue, "['cache']"}
//   Path p = DescribePath("sys.modules", {modules, app, app_dict, leak});
//   std::string s = FormatPath(p);
//
// Everything here reads object layouts through CPython's C API and never
// runs Python code of the objects (no __repr__, __eq__, __hash__,
// __getattr__, __iter__ of user classes; docs/design.md rule 9). It may run in
// any interpreter that shares the objects' GIL (docs/design.md rule 1); the
// references it takes are to objects that `from` keeps alive, so dropping
// them never runs a destructor (rule 10).
#pragma once

#include <Python.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"

namespace annex::heap {

enum class EdgeKind {
  kAttribute,     // .name: instance attribute, __slots__ or C member/field
  kDict,          // .__dict__: an object's, class's or module's dict
  kDictValue,     // ['key']: a value of a dict
  kDictKey,       // .keys()[i]: a key of a dict (position i in dict order)
  kIndex,         // [i]: an item of a list or tuple
  kSetMember,     // <member>: a member of a set or frozenset
  kCellContents,  // .cell_contents
  kClosureCell,   // [i] of a function's __closure__ (name: the free var)
  kFrameLocal,    // .f_locals['x'], or <cell of 'x'> for a cell (name: 'x')
  kType,          // .__class__
  kInternal,      // <internal>: a reference with no Python-level name
};

struct Edge {
  EdgeKind kind = EdgeKind::kInternal;
  // Python syntax appended to the holder's expression, e.g. ".cache",
  // "['k']", "[3]"; "<internal>" when nothing matched.
  std::string text;
  // The plain name where there is one (attribute, local, free variable).
  std::string name;
};

// How `from` references `to`, trying in order: container storage (dict
// values and keys, list and tuple items, set members, cell contents),
// the C-level fields of functions, methods, modules, types and frames,
// members of the type chain (__slots__ and C members), the instance dict,
// and the type pointer. The first match wins; kInternal when none does.
// Frames: locals are read from the frame's slots in place (no f_locals
// dict is built); a cell variable's slot holds its cell, named
// "<cell of 'x'>". Instance attributes are read from an existing dict or
// from the inline values of 3.11+ objects in place: no dict is
// materialized. The per-version reads live in monitor/python/version.h.
// Where: GIL held, no Python error set (none is left set); any interpreter.
Edge DescribeEdge(PyObject* from, PyObject* to);

// How `from` references each of `tos` (distinct objects), as DescribeEdge
// would name each one (the first match), into (*out)[i] for tos[i]. A
// dict, list or tuple asked for at least kBulkEdges of its referents is
// scanned once (a hash set of `tos`), so naming every item of a container
// costs its length, not its length squared; what the scan does not
// explain (e.g. a dict subclass's attributes) is named one by one.
// Where: as DescribeEdge.
inline constexpr size_t kBulkEdges = 8;
void DescribeEdgesFrom(PyObject* from, const std::vector<PyObject*>& tos,
                       std::vector<Edge>* out);

// DescribeEdgesFrom without the output vector: each edge goes to
// `each(i, edge)` for tos[i] as it is named, once per i, in no set order
// (`each` may move from the edge). Naming a long list's items then holds
// one Edge at a time, not one per item. Where: as DescribeEdge; `each`
// must not run Python code.
void ForEachEdgeFrom(PyObject* from, const std::vector<PyObject*>& tos,
                     absl::FunctionRef<void(size_t, Edge&)> each);

// Item indexes below this have their text's id found by index
// (EdgeTexts); "[i]" for a larger i is interned as any other text.
inline constexpr int64_t kItemIds = int64_t{1} << 24;

// Which types' objects DescribeEdge names by their attributes first (no
// container storage, C-level fields or object members come before them;
// such an object is no type and no module), remembered per type. Reads
// type objects only: any thread, while the GIL's holder keeps them alive
// and runs no Python code.
class AttributesFirstTypes {
 public:
  bool Of(PyTypeObject* type);

 private:
  absl::flat_hash_map<PyTypeObject*, bool> known_;
  PyTypeObject* last_type_ = nullptr;
  bool last_ = false;
};

// The distinct texts of the edges named in one question, each with an id
// (0, 1, ... in the order first met), for callers that group many edges
// by their text (byvia): ForEachEdgeTextFrom hands out ids, not texts.
// Equal texts get one id whichever way they were found ("[3]" as a list's
// item and as a dict's value under the key 3). A list's or tuple's item
// text is found by its index and an instance attribute's by its key
// object, without building or hashing a string per edge; an item's text
// is kept as its index until Text renders it.
//
// Keys and types are remembered by address: an EdgeTexts lives within
// one question (the target held, nothing freed) and is dropped with it.
// Where: as DescribeEdge (Text and ItemIndex: any thread).
class EdgeTexts {
 public:
  // How many distinct texts so far (ids are below this).
  size_t size() const { return ref_.size(); }
  // The text of `id`, as DescribeEdge names the edge.
  std::string Text(uint32_t id) const;
  // k when `id` is the text "[k]" found by index (OfItem), else -1.
  int64_t ItemIndex(uint32_t id) const {
    return (ref_[id] & kItemBit) != 0 ? int64_t{ref_[id] & ~kItemBit} : -1;
  }
  // The id of `text`, given one when new.
  uint32_t Intern(const std::string& text);
  // The id of "[k]".
  uint32_t OfItem(int64_t k);
  // The id of the text of an instance attribute edge under `key`.
  uint32_t OfAttribute(PyObject* key);
  // The ids of ".__class__" and ".__dict__", interned once.
  uint32_t OfClass();
  uint32_t OfInstanceDict();
  // Whether an object of `type` is named by its attributes before any
  // built-in kind of reference (AttributesFirstTypes).
  bool AttributesFirst(PyTypeObject* type) {
    return attributes_first_.Of(type);
  }

 private:
  static constexpr uint32_t kNoId = UINT32_MAX;
  static constexpr uint32_t kItemBit = uint32_t{1} << 31;
  absl::flat_hash_map<std::string, uint32_t> by_text_;  // not items
  std::vector<uint32_t> item_;                          // id by index k
  absl::flat_hash_map<PyObject*, uint32_t> attribute_;  // id by key
  // In front of `attribute_`: an object's few keys take turns, slot by
  // key address (most lookups are answered here, without hashing).
  static constexpr size_t kRecentAttributes = 64;
  std::array<std::pair<PyObject*, uint32_t>, kRecentAttributes>
      recent_attribute_{};
  uint32_t class_id_ = kNoId, instance_dict_id_ = kNoId;
  AttributesFirstTypes attributes_first_;
  std::vector<uint32_t> ref_;       // by id: kItemBit | k, or into named_
  std::vector<std::string> named_;  // the texts that are no items
};

// ForEachEdgeFrom handing out the id of each edge's text in `texts`
// instead of the edge: each(i, id) for tos[i], once per i, in no set
// order. The texts are those ForEachEdgeFrom names. Where: as
// DescribeEdge; `each` must not run Python code.
void ForEachEdgeTextFrom(PyObject* from, const std::vector<PyObject*>& tos,
                         EdgeTexts& texts,
                         absl::FunctionRef<void(size_t, uint32_t)> each);

// An edge named without Python (ForEachPlainEdgeFrom): item `index` of a
// list or tuple ("[index]"), an instance attribute under `key` (the text
// EdgeTexts::OfAttribute gives), the class pointer (".__class__") or the
// instance dict (".__dict__").
struct PlainEdge {
  enum Kind { kItem, kAttribute, kClass, kInstanceDict } kind = kItem;
  Py_ssize_t index = 0;     // kItem
  PyObject* key = nullptr;  // kAttribute
};

// The edges from `from` to each of `tos` (distinct) named as
// ForEachEdgeTextFrom names them, when each is a PlainEdge: `from` is a
// list or tuple holding each of `tos` as an item (the lowest index), or an
// object of an attributes-first type (`types`) holding each as an
// attribute (inline or in its dict), as its class or as its dict. Then
// each(i, edge) once per i, and true. Otherwise false, having called
// `each` for some of `tos` or none (the caller drops those and names the
// edges with ForEachEdgeTextFrom). Reads memory only, calling no Python
// API that runs code, allocates or sets an error: any thread, while the
// GIL's holder keeps the objects alive and runs no Python code (byvia
// names most edges on the lanes this way).
bool ForEachPlainEdgeFrom(
    PyObject* from, const std::vector<PyObject*>& tos,
    AttributesFirstTypes& types,
    absl::FunctionRef<void(size_t, const PlainEdge&)> each);

// DescribeEdge of every (from, to) pair, in order: pairs that repeat are
// named once and pairs sharing a holder are named together
// (DescribeEdgesFrom). Where: as DescribeEdge.
std::vector<Edge> DescribeEdges(
    const std::vector<std::pair<PyObject*, PyObject*>>& pairs);

// `key` as Python source when it is an exact str, int, float, complex,
// bytes, bool, None, or a tuple of those (nesting up to 3 levels, at most
// 200 characters), using only the built-in reprs of those types; otherwise
// "<key of type T at 0x...>". Where: GIL held, no Python error set; any
// interpreter.
std::string RenderKey(PyObject* key);

// A path from a named root: the root's name plus one edge per step.
struct Path {
  std::string root_name;
  std::vector<Edge> edges;
  // How the named root holds the path's first object, e.g. ".f_globals"
  // for a running frame's globals (roots.h); empty when the root is the
  // object itself.
  std::string root_edge;
};

// The edges between consecutive `objects` (objects[0] is the root's
// object). A function -> __closure__ -> cell step is named by the code's
// co_freevars (kClosureCell, name = the free variable).
// Where: GIL held, no Python error set; any interpreter; objects alive.
Path DescribePath(const std::string& root_name,
                  const std::vector<PyObject*>& objects);

// The edges of many paths at once: the steps of all of them named by one
// DescribeEdges (a holder shared by many paths, such as one list holding
// every target, is scanned once: linear in the paths, not quadratic).
// Same result as DescribePath of each. Where: as DescribePath.
std::vector<Path> DescribePaths(
    const std::vector<std::string>& root_names,
    const std::vector<std::vector<PyObject*>>& objects);

// "%R.<root_name>" followed by the root edge and the edge texts; a root name
// that is not a dotted identifier is written %R['name']. Pure C++, any thread.
std::string FormatPath(const Path& path);

}  // namespace annex::heap
