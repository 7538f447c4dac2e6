// Edge naming from object layouts, without running Python code.
#include "monitor/heap/edge_names.h"

#include <frameobject.h>
#include <structmember.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "monitor/python/huge_pages.h"
#include "monitor/python/version.h"

namespace annex::heap {
namespace {

bool IsIdentifier(const char* s) {
  if (s == nullptr || *s == '\0' ||
      std::isdigit(static_cast<unsigned char>(*s))) {
    return false;
  }
  for (; *s; ++s) {
    const unsigned char c = static_cast<unsigned char>(*s);
    if (!(std::isalnum(c) || c == '_')) return false;
  }
  return true;
}

// Whether only built-in reprs would run for `key`. Where: GIL held.
bool SafeToRepr(PyObject* key, int depth) {
  if (key == Py_None || PyBool_Check(key) || PyLong_CheckExact(key) ||
      PyFloat_CheckExact(key) || PyComplex_CheckExact(key) ||
      PyUnicode_CheckExact(key) || PyBytes_CheckExact(key)) {
    return true;
  }
  if (PyTuple_CheckExact(key) && depth < 3) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); ++i) {
      if (!SafeToRepr(PyTuple_GET_ITEM(key, i), depth + 1)) return false;
    }
    return true;
  }
  return false;
}

// Reads the type name only. Where: GIL held.
std::string Opaque(PyObject* key) {
  char address[32];
  std::snprintf(address, sizeof(address), "%p", static_cast<void*>(key));
  return absl::StrCat("<key of type ", Py_TYPE(key)->tp_name, " at ", address,
                      ">");
}

Edge Make(EdgeKind kind, std::string text, std::string name = "") {
  return Edge{kind, std::move(text), std::move(name)};
}

// `.name` for a str key that is an identifier, else `.__dict__[key]`.
// Where: GIL held.
Edge AttributeEdge(PyObject* key) {
  if (PyUnicode_CheckExact(key)) {
    const char* utf8 = PyUnicode_AsUTF8(key);
    if (utf8 != nullptr && IsIdentifier(utf8)) {
      return Make(EdgeKind::kAttribute, absl::StrCat(".", utf8), utf8);
    }
    PyErr_Clear();
  }
  return Make(EdgeKind::kDictValue,
              absl::StrCat(".__dict__[", RenderKey(key), "]"));
}

// Dict values and keys. Where: GIL held.
bool DescribeDictEdge(PyObject* dict, PyObject* to, Edge* out) {
  Py_ssize_t pos = 0, index = 0;
  PyObject *key, *value;
  while (PyDict_Next(dict, &pos, &key, &value)) {
    if (value == to) {
      *out = Make(EdgeKind::kDictValue, absl::StrCat("[", RenderKey(key), "]"));
      return true;
    }
    if (key == to) {
      *out = Make(EdgeKind::kDictKey, absl::StrCat(".keys()[", index, "]"));
      return true;
    }
    ++index;
  }
  return false;
}

// Object-typed members (`__slots__`, C members) along the type chain.
// Where: GIL held.
bool DescribeMemberEdge(PyObject* from, PyObject* to, Edge* out) {
  for (PyTypeObject* type = Py_TYPE(from); type != nullptr;
       type = type->tp_base) {
    for (PyMemberDef* m = type->tp_members; m != nullptr && m->name != nullptr;
         ++m) {
      if (m->type != T_OBJECT && m->type != T_OBJECT_EX) continue;
#ifdef Py_RELATIVE_OFFSET
      if (m->flags & Py_RELATIVE_OFFSET) continue;
#endif
      PyObject* value = *reinterpret_cast<PyObject**>(
          reinterpret_cast<char*>(from) + m->offset);
      if (value == to) {
        *out = Make(EdgeKind::kAttribute, absl::StrCat(".", m->name), m->name);
        return true;
      }
    }
  }
  return false;
}

// Functions: the C fields behind their getters. Where: GIL held.
bool DescribeFunctionEdge(PyFunctionObject* f, PyObject* to, Edge* out) {
  struct Field {
    PyObject* value;
    const char* name;
  } fields[] = {
      {f->func_code, "__code__"},
      {f->func_globals, "__globals__"},
      {f->func_builtins, "__builtins__"},
      {f->func_defaults, "__defaults__"},
      {f->func_kwdefaults, "__kwdefaults__"},
      {f->func_closure, "__closure__"},
      {f->func_doc, "__doc__"},
      {f->func_name, "__name__"},
      {f->func_qualname, "__qualname__"},
      {f->func_dict, "__dict__"},
      {f->func_module, "__module__"},
      {f->func_annotations, "__annotations__"},
  };
  for (const Field& field : fields) {
    if (field.value == to) {
      *out = Make(std::string(field.name) == "__dict__" ? EdgeKind::kDict
                                                        : EdgeKind::kAttribute,
                  absl::StrCat(".", field.name), field.name);
      return true;
    }
  }
  return false;
}

// Types: dict, MRO, bases and the heap type's names. Where: GIL held.
bool DescribeTypeEdge(PyTypeObject* type, PyObject* to, Edge* out) {
  // 3.12+: a static builtin type's dict lives in the interpreter's state.
  if (type->tp_dict == to || python::TypeDictBorrowed(type) == to) {
    *out = Make(EdgeKind::kDict, ".__dict__");
    return true;
  }
  struct Field {
    PyObject* value;
    const char* name;
  } fields[] = {
      {type->tp_mro, "__mro__"},
      {type->tp_bases, "__bases__"},
      {reinterpret_cast<PyObject*>(type->tp_base), "__base__"},
  };
  for (const Field& field : fields) {
    if (field.value == to) {
      *out =
          Make(EdgeKind::kAttribute, absl::StrCat(".", field.name), field.name);
      return true;
    }
  }
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    auto* heap = reinterpret_cast<PyHeapTypeObject*>(type);
    if (heap->ht_name == to) {
      *out = Make(EdgeKind::kAttribute, ".__name__", "__name__");
      return true;
    }
    if (heap->ht_qualname == to) {
      *out = Make(EdgeKind::kAttribute, ".__qualname__", "__qualname__");
      return true;
    }
    if (heap->ht_slots == to) {
      *out = Make(EdgeKind::kAttribute, ".__slots__", "__slots__");
      return true;
    }
  }
  return false;
}

// Frames: locals, then the frame's other references. Where: GIL held.
bool DescribeFrameEdge(PyFrameObject* frame, PyObject* to, Edge* out) {
  if (PyFrame_Check(to)) {
    // A frame object refers to no other frame than the one it was called
    // from; naming it this way avoids PyFrame_GetBack, which may create
    // frame objects.
    *out = Make(EdgeKind::kAttribute, ".f_back", "f_back");
    return true;
  }
  PyCodeObject* code = PyFrame_GetCode(frame);
  const bool is_code = reinterpret_cast<PyObject*>(code) == to;
  Py_DECREF(code);
  if (is_code) {
    *out = Make(EdgeKind::kAttribute, ".f_code", "f_code");
    return true;
  }
  PyObject* globals = PyFrame_GetGlobals(frame);
  const bool is_globals = globals == to;
  Py_XDECREF(globals);
  if (is_globals) {
    *out = Make(EdgeKind::kAttribute, ".f_globals", "f_globals");
    return true;
  }
  PyObject* builtins = PyFrame_GetBuiltins(frame);
  const bool is_builtins = builtins == to;
  Py_XDECREF(builtins);
  if (is_builtins) {
    *out = Make(EdgeKind::kAttribute, ".f_builtins", "f_builtins");
    return true;
  }
  // Read from the frame's slots in place: no f_locals dict is built
  // (monitor/python/version.h).
  bool is_cell = false;
  if (PyObject* name = python::FrameSlotHolding(frame, to, &is_cell)) {
    const char* utf8 = PyUnicode_AsUTF8(name);
    if (utf8 == nullptr) {
      PyErr_Clear();
      return false;
    }
    // A cell variable's slot holds the cell; f_locals['x'] would be its
    // contents, so the cell itself has no Python spelling from the frame.
    *out = is_cell
               ? Make(EdgeKind::kFrameLocal,
                      absl::StrCat("<cell of ", RenderKey(name), ">"), utf8)
               : Make(EdgeKind::kFrameLocal,
                      absl::StrCat(".f_locals[", RenderKey(name), "]"), utf8);
    return true;
  }
  if (PyObject* locals = python::FrameLocalsIfBuilt(frame);
      locals != nullptr && locals == to) {
    *out = Make(EdgeKind::kAttribute, ".f_locals", "f_locals");
    return true;
  }
  return false;
}

// The reference kinds DescribeEdge tries before an instance's attributes:
// container storage, the C-level fields of built-in kinds and the members
// of the type chain. Where: GIL held.
bool DescribeBuiltinEdge(PyObject* from, PyObject* to, Edge* out) {
  // Containers first: their storage is the common case.
  if (PyDict_Check(from) && DescribeDictEdge(from, to, out)) return true;
  if (PyList_Check(from)) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(from); ++i) {
      if (PyList_GET_ITEM(from, i) == to) {
        *out = Make(EdgeKind::kIndex, absl::StrCat("[", i, "]"));
        return true;
      }
    }
  }
  if (PyTuple_Check(from)) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(from); ++i) {
      if (PyTuple_GET_ITEM(from, i) == to) {
        *out = Make(EdgeKind::kIndex, absl::StrCat("[", i, "]"));
        return true;
      }
    }
  }
  if (PyAnySet_Check(from)) {
    // The set's table read in place (no iterator object, never a user
    // __iter__ of a subclass).
    if (python::SetHasMember(from, to)) {
      *out = Make(EdgeKind::kSetMember, "<member>");
      return true;
    }
  }
  if (PyCell_Check(from) && PyCell_GET(from) == to) {
    *out = Make(EdgeKind::kCellContents, ".cell_contents");
    return true;
  }
  // C-level fields of built-in kinds.
  if (PyFunction_Check(from) &&
      DescribeFunctionEdge(reinterpret_cast<PyFunctionObject*>(from), to,
                           out)) {
    return true;
  }
  if (PyMethod_Check(from)) {
    if (PyMethod_GET_SELF(from) == to) {
      *out = Make(EdgeKind::kAttribute, ".__self__", "__self__");
      return true;
    }
    if (PyMethod_GET_FUNCTION(from) == to) {
      *out = Make(EdgeKind::kAttribute, ".__func__", "__func__");
      return true;
    }
  }
  if (PyCFunction_Check(from) && PyCFunction_GET_SELF(from) == to) {
    *out = Make(EdgeKind::kAttribute, ".__self__", "__self__");
    return true;
  }
  if (PyModule_Check(from) && PyModule_GetDict(from) == to) {
    *out = Make(EdgeKind::kDict, ".__dict__");
    return true;
  }
  if (PyType_Check(from) &&
      DescribeTypeEdge(reinterpret_cast<PyTypeObject*>(from), to, out)) {
    return true;
  }
  if (PyFrame_Check(from) &&
      DescribeFrameEdge(reinterpret_cast<PyFrameObject*>(from), to, out)) {
    return true;
  }
  // Members of the type chain: __slots__ and C members (e.g. __self__ of
  // builtin methods, property fget).
  return DescribeMemberEdge(from, to, out);
}

// Whether DescribeBuiltinEdge never names an edge from an object of
// `type`: none of the kinds it reads, and no object member in the type
// chain (as DescribeMemberEdge reads them). Such an object's edges are its
// attributes first; it is no type and no module. Where: GIL held.
bool NoBuiltinEdges(PyTypeObject* type) {
  if (PyType_IsSubtype(type, &PyDict_Type) ||
      PyType_IsSubtype(type, &PyList_Type) ||
      PyType_IsSubtype(type, &PyTuple_Type) ||
      PyType_IsSubtype(type, &PySet_Type) ||
      PyType_IsSubtype(type, &PyFrozenSet_Type) || type == &PyCell_Type ||
      type == &PyFunction_Type || type == &PyMethod_Type ||
      PyType_IsSubtype(type, &PyCFunction_Type) ||
      PyType_IsSubtype(type, &PyModule_Type) ||
      PyType_IsSubtype(type, &PyType_Type) || type == &PyFrame_Type) {
    return false;
  }
  for (PyTypeObject* c = type; c != nullptr; c = c->tp_base) {
    for (PyMemberDef* m = c->tp_members; m != nullptr && m->name != nullptr;
         ++m) {
#ifdef Py_RELATIVE_OFFSET
      if (m->flags & Py_RELATIVE_OFFSET) continue;
#endif
      if (m->type == T_OBJECT || m->type == T_OBJECT_EX) return false;
    }
  }
  return true;
}

// The reference kinds DescribeEdge tries after DescribeBuiltinEdge: the
// instance dict (the dict itself, or one of its values), or an attribute
// a 3.11+ object holds inline without a dict object, read in place (no
// dict is materialized; monitor/python/version.h); then the type pointer.
// `key` is the attribute's key for kAttribute. `plain`: `from` is known
// to be no type and no module (EdgeTexts::AttributesFirst). Where: GIL
// held.
struct InstanceRef {
  enum Kind { kAttribute, kDict, kClass, kInternal } kind;
  PyObject* key = nullptr;
};
InstanceRef FindInstanceRef(PyObject* from, PyObject* to, bool plain) {
  if (plain || (!PyType_Check(from) && !PyModule_Check(from))) {
    if (PyObject* key = python::InlineAttributeHolding(from, to)) {
      return {InstanceRef::kAttribute, key};
    }
    if (PyObject* dict = python::ExistingInstanceDict(from)) {
      if (dict == to) return {InstanceRef::kDict};
      if (PyDict_Check(dict)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(dict, &pos, &key, &value)) {
          if (value == to) return {InstanceRef::kAttribute, key};
        }
      }
    }
  }
  if (reinterpret_cast<PyObject*>(Py_TYPE(from)) == to) {
    return {InstanceRef::kClass};
  }
  return {InstanceRef::kInternal};
}

constexpr char kClassText[] = ".__class__";
constexpr char kInstanceDictText[] = ".__dict__";
constexpr char kInternalText[] = "<internal>";

// FindInstanceRef's edge. Where: GIL held.
Edge DescribeInstanceEdge(PyObject* from, PyObject* to) {
  const InstanceRef ref = FindInstanceRef(from, to, /*plain=*/false);
  switch (ref.kind) {
    case InstanceRef::kAttribute:
      return AttributeEdge(ref.key);
    case InstanceRef::kDict:
      return Make(EdgeKind::kDict, kInstanceDictText);
    case InstanceRef::kClass:
      return Make(EdgeKind::kType, kClassText);
    case InstanceRef::kInternal:
      break;
  }
  return Make(EdgeKind::kInternal, kInternalText);
}

// DescribeEdge without the final error clearing. Where: GIL held.
Edge DescribeEdgeNoErrorCheck(PyObject* from, PyObject* to) {
  Edge edge;
  if (DescribeBuiltinEdge(from, to, &edge)) return edge;
  return DescribeInstanceEdge(from, to);
}

}  // namespace

// Tuples are rendered here, item by item: the built-in tuple repr keeps a
// recursion guard list in the calling thread state's dict (Py_ReprEnter),
// which would create a dict and a list in the target. Where: GIL held.
std::string RenderKey(PyObject* key) {
  if (!SafeToRepr(key, 0)) return Opaque(key);
  if (PyTuple_CheckExact(key)) {
    const Py_ssize_t n = PyTuple_GET_SIZE(key);
    std::string out = "(";
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (i > 0) out += ", ";
      out += RenderKey(PyTuple_GET_ITEM(key, i));
      if (out.size() > 200) return Opaque(key);
    }
    out += n == 1 ? ",)" : ")";
    return out;
  }
  PyObject* repr = PyObject_Repr(key);
  if (repr == nullptr) {
    PyErr_Clear();  // e.g. an int too long for str()
    return Opaque(key);
  }
  Py_ssize_t length = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(repr, &length);
  std::string out;
  if (utf8 != nullptr && length <= 200) {
    out.assign(utf8, length);
  } else {
    PyErr_Clear();
    out = Opaque(key);
  }
  Py_DECREF(repr);
  return out;
}

Edge DescribeEdge(PyObject* from, PyObject* to) {
  Edge edge = DescribeEdgeNoErrorCheck(from, to);
  PyErr_Clear();
  return edge;
}

void DescribeEdgesFrom(PyObject* from, const std::vector<PyObject*>& tos,
                       std::vector<Edge>* out) {
  // Every element is assigned by `each` (once per index): the old ones are
  // only overwritten, not built afresh first.
  out->resize(tos.size());
  ForEachEdgeFrom(from, tos,
                  [out](size_t i, Edge& edge) { (*out)[i] = std::move(edge); });
}

namespace {

// The edges from `from` to each of `tos` (distinct), found as
// ForEachEdgeFrom names them, once per i: `item(i, k)` when tos[i] is item
// k of a list or tuple (the lowest such k), `named(i, edge)` for a dict's
// value or key found by the scan, and `single(i)` for tos[i] to be named
// one by one as DescribeEdge names it. Where: as DescribeEdge.
template <typename Item, typename Named, typename Single>
void FindEdgesFrom(PyObject* from, const std::vector<PyObject*>& tos,
                   Item item_at, Named named, Single single) {
  const bool list = PyList_Check(from), tuple = PyTuple_Check(from),
             dict = PyDict_Check(from);
  // A list's or tuple's length and items (n is 0 for anything else).
  const Py_ssize_t n = list    ? PyList_GET_SIZE(from)
                       : tuple ? PyTuple_GET_SIZE(from)
                               : 0;
  auto item = [&](Py_ssize_t k) {
    return list ? PyList_GET_ITEM(from, k) : PyTuple_GET_ITEM(from, k);
  };
  if (tos.size() < kBulkEdges || !(list || tuple || dict)) {
    for (size_t i = 0; i < tos.size(); ++i) {
      // A list's or tuple's items first, as DescribeEdge tries them.
      Py_ssize_t k = 0;
      while (k < n && item(k) != tos[i]) ++k;
      if (k < n) {
        item_at(i, k);
      } else {
        single(i);
      }
    }
    return;
  }
  // A list or tuple asked for its items in order or in reverse, without
  // hashing. In order: item k is tos[k] while they agree, and each is the
  // lowest index holding its object (the items before it are the other,
  // distinct, objects). In reverse, as CPython's list and tuple traverse
  // their items and so as a walk records them (byvia asks in that order):
  // only when every item is asked for, so each object is held once.
  size_t first = 0;      // tos[0, first) are named
  Py_ssize_t start = 0;  // the list's items before it are those
  if (list || tuple) {
    for (; start < n && first < tos.size(); ++start, ++first) {
      if (item(start) != tos[first]) break;
      item_at(first, start);
    }
    if (first == tos.size()) return;
    if (first == 0 && static_cast<size_t>(n) == tos.size()) {
      Py_ssize_t j = 0;
      while (j < n && item(n - 1 - j) == tos[j]) ++j;
      if (j == n) {
        for (j = 0; j < n; ++j) item_at(j, n - 1 - j);
        return;
      }
    }
  }
  // Each wanted object not named yet: its index in `tos`, until it is.
  absl::flat_hash_map<PyObject*, uint32_t> pending;
  pending.reserve(tos.size() - first);
  for (size_t i = first; i < tos.size(); ++i) {
    pending.emplace(tos[i], static_cast<uint32_t>(i));
  }
  auto take = [&](PyObject* object, uint32_t* i) {
    auto it = pending.find(object);
    if (it == pending.end()) return false;
    *i = it->second;
    pending.erase(it);
    return true;
  };
  uint32_t i = 0;
  if (dict) {
    // The order DescribeDictEdge tries: entry by entry, value then key.
    Py_ssize_t pos = 0, index = 0;
    PyObject *key, *value;
    Edge edge;
    while (!pending.empty() && PyDict_Next(from, &pos, &key, &value)) {
      if (take(value, &i)) {
        edge =
            Make(EdgeKind::kDictValue, absl::StrCat("[", RenderKey(key), "]"));
        named(i, edge);
      }
      if (take(key, &i)) {
        edge = Make(EdgeKind::kDictKey, absl::StrCat(".keys()[", index, "]"));
        named(i, edge);
      }
      ++index;
    }
  } else {
    for (Py_ssize_t k = start; k < n && !pending.empty(); ++k) {
      if (take(item(k), &i)) item_at(i, k);
    }
  }
  // Not container storage: the other kinds of reference, one by one.
  for (const auto& [to, index] : pending) single(index);
}

// i when `text` is "[i]" with i written as Python writes an int (no sign,
// no leading zero) and below 2^24 (the item of a list or tuple, or a
// dict's value under an int key: the same text), else -1.
int64_t ItemIndexOf(const std::string& text) {
  const size_t digits = text.size() - 2;
  if (text.size() < 3 || digits > 7 || text.front() != '[' ||
      text.back() != ']' || (text[1] == '0' && digits > 1)) {
    return -1;
  }
  int64_t i = 0;
  for (size_t k = 1; k <= digits; ++k) {
    const char c = text[k];
    if (c < '0' || c > '9') return -1;
    i = i * 10 + (c - '0');
  }
  return i < kItemIds ? i : -1;
}

}  // namespace

void ForEachEdgeFrom(PyObject* from, const std::vector<PyObject*>& tos,
                     absl::FunctionRef<void(size_t, Edge&)> each) {
  Edge edge;
  FindEdgesFrom(
      from, tos,
      [&](size_t i, Py_ssize_t k) {
        edge = Make(EdgeKind::kIndex, absl::StrCat("[", k, "]"));
        each(i, edge);
      },
      [&](size_t i, Edge& named) { each(i, named); },
      [&](size_t i) {
        edge = DescribeEdge(from, tos[i]);
        each(i, edge);
      });
  PyErr_Clear();
}

uint32_t EdgeTexts::Intern(const std::string& text) {
  if (const int64_t k = ItemIndexOf(text); k >= 0) return OfItem(k);
  const uint32_t next = static_cast<uint32_t>(ref_.size());
  auto [it, added] = by_text_.try_emplace(text, next);
  if (added) {
    ref_.push_back(static_cast<uint32_t>(named_.size()));
    named_.push_back(it->first);
  }
  return it->second;
}

uint32_t EdgeTexts::OfItem(int64_t k) {
  if (k >= kItemIds) return Intern(absl::StrCat("[", k, "]"));
  // A list of millions of members gives millions of items: both vectors
  // grow into huge pages (GrowHuge), not into fresh 4 KiB pages.
  if (static_cast<size_t>(k) >= item_.size()) {
    const size_t size = std::max<size_t>(k + 1, 2 * item_.size());
    python::GrowHuge(item_, size - item_.size());
    item_.resize(size, kNoId);
  }
  uint32_t& id = item_[k];
  if (id == kNoId) {
    id = static_cast<uint32_t>(ref_.size());
    python::GrowHuge(ref_, 1);
    ref_.push_back(kItemBit | static_cast<uint32_t>(k));
  }
  return id;
}

uint32_t EdgeTexts::OfAttribute(PyObject* key) {
  std::pair<PyObject*, uint32_t>& recent =
      recent_attribute_[(reinterpret_cast<uintptr_t>(key) >> 4) %
                        kRecentAttributes];
  if (recent.first == key) return recent.second;
  auto it = attribute_.find(key);
  uint32_t id;
  if (it != attribute_.end()) {
    id = it->second;
  } else {
    id = Intern(AttributeEdge(key).text);
    attribute_.emplace(key, id);
  }
  recent = {key, id};
  return id;
}

uint32_t EdgeTexts::OfClass() {
  if (class_id_ == kNoId) class_id_ = Intern(kClassText);
  return class_id_;
}

uint32_t EdgeTexts::OfInstanceDict() {
  if (instance_dict_id_ == kNoId) instance_dict_id_ = Intern(kInstanceDictText);
  return instance_dict_id_;
}

bool AttributesFirstTypes::Of(PyTypeObject* type) {
  if (type != last_type_) {
    auto [it, added] = known_.try_emplace(type, false);
    if (added) it->second = NoBuiltinEdges(type);
    last_type_ = type;
    last_ = it->second;
  }
  return last_;
}

std::string EdgeTexts::Text(uint32_t id) const {
  const uint32_t ref = ref_[id];
  return (ref & kItemBit) != 0 ? absl::StrCat("[", ref & ~kItemBit, "]")
                               : named_[ref];
}

namespace {

// The id of DescribeInstanceEdge(from, to)'s text for a `from` whose
// type's objects are named by their attributes first, without making the
// edge: an attribute's text is its key's, named once per key, and the
// other kinds' texts are named once. Where: as DescribeEdge.
uint32_t InstanceEdgeText(PyObject* from, PyObject* to, EdgeTexts& texts) {
  const InstanceRef ref = FindInstanceRef(from, to, /*plain=*/true);
  switch (ref.kind) {
    case InstanceRef::kAttribute:
      return texts.OfAttribute(ref.key);
    case InstanceRef::kDict:
      return texts.OfInstanceDict();
    case InstanceRef::kClass:
      return texts.OfClass();
    case InstanceRef::kInternal:
      break;
  }
  return texts.Intern(kInternalText);
}

}  // namespace

void ForEachEdgeTextFrom(PyObject* from, const std::vector<PyObject*>& tos,
                         EdgeTexts& texts,
                         absl::FunctionRef<void(size_t, uint32_t)> each) {
  FindEdgesFrom(
      from, tos, [&](size_t i, Py_ssize_t k) { each(i, texts.OfItem(k)); },
      [&](size_t i, Edge& named) { each(i, texts.Intern(named.text)); },
      [&](size_t i) {
        PyObject* to = tos[i];
        if (!texts.AttributesFirst(Py_TYPE(from))) {
          each(i, texts.Intern(DescribeEdge(from, to).text));
        } else {
          each(i, InstanceEdgeText(from, to, texts));
        }
      });
  PyErr_Clear();
}

bool ForEachPlainEdgeFrom(
    PyObject* from, const std::vector<PyObject*>& tos,
    AttributesFirstTypes& types,
    absl::FunctionRef<void(size_t, const PlainEdge&)> each) {
  PlainEdge edge;
  if (PyList_Check(from) || PyTuple_Check(from)) {
    // As FindEdgesFrom names them in every way it scans: the lowest index.
    const bool list = PyList_Check(from);
    const Py_ssize_t n = list ? PyList_GET_SIZE(from) : PyTuple_GET_SIZE(from);
    PyObject* const* items =
        list ? reinterpret_cast<PyListObject*>(from)->ob_item
             : reinterpret_cast<PyTupleObject*>(from)->ob_item;
    edge.kind = PlainEdge::kItem;
    for (size_t i = 0; i < tos.size(); ++i) {
      Py_ssize_t k = 0;
      while (k < n && items[k] != tos[i]) ++k;
      if (k == n) return false;  // held another way: DescribeEdge's
      edge.index = k;
      each(i, edge);
    }
    return true;
  }
  if (!types.Of(Py_TYPE(from))) return false;
  for (size_t i = 0; i < tos.size(); ++i) {
    const InstanceRef ref = FindInstanceRef(from, tos[i], /*plain=*/true);
    switch (ref.kind) {
      case InstanceRef::kAttribute:
        edge.kind = PlainEdge::kAttribute;
        edge.key = ref.key;
        break;
      case InstanceRef::kDict:
        edge.kind = PlainEdge::kInstanceDict;
        break;
      case InstanceRef::kClass:
        edge.kind = PlainEdge::kClass;
        break;
      case InstanceRef::kInternal:
        return false;
    }
    each(i, edge);
  }
  return true;
}

std::vector<Edge> DescribeEdges(
    const std::vector<std::pair<PyObject*, PyObject*>>& pairs) {
  std::vector<Edge> out(pairs.size());
  std::vector<uint32_t> order(pairs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return pairs[a] < pairs[b]; });
  std::vector<PyObject*> tos;
  std::vector<Edge> named;
  for (size_t a = 0; a < order.size();) {
    PyObject* from = pairs[order[a]].first;
    size_t b = a;
    tos.clear();
    while (b < order.size() && pairs[order[b]].first == from) {
      PyObject* to = pairs[order[b]].second;
      if (tos.empty() || tos.back() != to) tos.push_back(to);
      ++b;
    }
    DescribeEdgesFrom(from, tos, &named);
    for (size_t j = a, t = 0; j < b; ++j) {
      if (pairs[order[j]].second != tos[t]) ++t;
      out[order[j]] = named[t];
    }
    a = b;
  }
  return out;
}

namespace {

// function -> its __closure__ tuple -> cell: names the cell by the code's
// free variable at that index. Where: GIL held.
void NameClosureCells(const std::vector<PyObject*>& objects, Path& path) {
  for (size_t i = 0; i + 2 < objects.size(); ++i) {
    if (!PyFunction_Check(objects[i])) continue;
    auto* f = reinterpret_cast<PyFunctionObject*>(objects[i]);
    if (f->func_closure != objects[i + 1] || !PyCell_Check(objects[i + 2]))
      continue;
    Edge& edge = path.edges[i + 1];
    if (edge.kind != EdgeKind::kIndex) continue;
    const Py_ssize_t index = std::atol(edge.text.c_str() + 1);
    if (!PyCode_Check(f->func_code)) continue;
    PyObject* name_obj = python::CodeFreevarName(f->func_code, index);
    if (name_obj != nullptr) {
      const char* name = PyUnicode_AsUTF8(name_obj);
      edge.kind = EdgeKind::kClosureCell;
      if (name != nullptr) edge.name = name;
    }
    PyErr_Clear();
  }
}

}  // namespace

Path DescribePath(const std::string& root_name,
                  const std::vector<PyObject*>& objects) {
  return DescribePaths({root_name}, {objects})[0];
}

std::vector<Path> DescribePaths(
    const std::vector<std::string>& root_names,
    const std::vector<std::vector<PyObject*>>& objects) {
  std::vector<std::pair<PyObject*, PyObject*>> pairs;
  for (const std::vector<PyObject*>& o : objects) {
    for (size_t i = 0; i + 1 < o.size(); ++i)
      pairs.emplace_back(o[i], o[i + 1]);
  }
  std::vector<Edge> edges = DescribeEdges(pairs);
  std::vector<Path> out(objects.size());
  size_t e = 0;
  for (size_t p = 0; p < objects.size(); ++p) {
    out[p].root_name = root_names[p];
    for (size_t i = 0; i + 1 < objects[p].size(); ++i) {
      out[p].edges.push_back(std::move(edges[e++]));
    }
    NameClosureCells(objects[p], out[p]);
  }
  return out;
}

std::string FormatPath(const Path& path) {
  bool dotted = !path.root_name.empty();
  size_t start = 0;
  while (dotted && start <= path.root_name.size()) {
    size_t dot = path.root_name.find('.', start);
    if (dot == std::string::npos) dot = path.root_name.size();
    dotted = IsIdentifier(path.root_name.substr(start, dot - start).c_str());
    start = dot + 1;
  }
  std::string out = dotted ? absl::StrCat("%R.", path.root_name)
                           : absl::StrCat("%R['", path.root_name, "']");
  out += path.root_edge;
  for (const Edge& edge : path.edges) out += edge.text;
  return out;
}

}  // namespace annex::heap
