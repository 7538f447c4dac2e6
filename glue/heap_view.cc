// The session's heap service.
#include "glue/heap_view.h"

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/annex_access.h"
#include "glue/session.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/retention.h"
#include "monitor/python/guards.h"
#include "monitor/python/target_threads.h"

namespace annex::glue {
// "module.Class" for classes defined in Python, tp_name otherwise. Reads the
// type's own dict only: no attribute lookup, no target code, and no object
// created (the target is current during questions).
// Where: GIL held; `type` alive.
std::string KindName(PyTypeObject* type) {
  if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || type->tp_dict == nullptr) {
    return type->tp_name;
  }
  PyObject* module = nullptr;
  Py_ssize_t pos = 0;
  PyObject* key;
  PyObject* value;
  while (PyDict_Next(type->tp_dict, &pos, &key, &value)) {
    if (PyUnicode_Check(key) &&
        PyUnicode_CompareWithASCIIString(key, "__module__") == 0) {
      module = value;
      break;
    }
  }
  if (module == nullptr || !PyUnicode_Check(module)) return type->tp_name;
  std::string m = python::Text(module);
  if (m == "builtins") return type->tp_name;
  return m + "." + type->tp_name;
}

namespace {

}  // namespace

uint64_t KindedSet::total_size() const {
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;
  return total;
}

std::vector<KindedSet::Row> KindedSet::Rows() const {
  std::vector<Row> rows(kind_names->size());
  for (size_t i = 0; i < addresses.size(); ++i) {
    rows[kinds[i]].count++;
    rows[kinds[i]].size += sizes[i];
  }
  for (size_t k = 0; k < rows.size(); ++k) rows[k].kind = (*kind_names)[k];
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [](const Row& r) { return r.count == 0; }),
             rows.end());
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.size != b.size) return a.size > b.size;
    if (a.count != b.count) return a.count > b.count;
    return a.kind < b.kind;
  });
  return rows;
}

std::string KindedSet::PartitionTable(size_t max_rows) const {
  const uint64_t n = count(), total = total_size();
  std::string out = absl::StrFormat(
      "Partition of a set of %d objects. Total size = %d bytes.\n", n, total);
  absl::StrAppend(&out,
                  " Index  Count   %     Size   % Cumulative  % Kind (type)\n");
  std::vector<Row> rows = Rows();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < rows.size() && i < max_rows; ++i) {
    cumulative += rows[i].size;
    absl::StrAppendFormat(
        &out, "%6d %6d %3d %8d %3d %9d %3d %s\n", i, rows[i].count,
        n ? rows[i].count * 100 / n : 0, rows[i].size,
        total ? rows[i].size * 100 / total : 0, cumulative,
        total ? cumulative * 100 / total : 0, rows[i].kind);
  }
  if (rows.size() > max_rows) {
    absl::StrAppendFormat(&out,
                          "<%d more rows. Type e.g. '_.more' to view.>\n",
                          rows.size() - max_rows);
  }
  return out;
}

KindedSet KindedSet::OfKind(const std::string& kind) const {
  KindedSet out;
  out.kind_names = kind_names;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if ((*kind_names)[kinds[i]] != kind) continue;
    out.addresses.push_back(addresses[i]);
    out.kinds.push_back(kinds[i]);
    out.sizes.push_back(sizes[i]);
  }
  return out;
}

KindedSet KindedSet::Combine(const KindedSet& a, const KindedSet& b, char op) {
  KindedSet out;
  // One kind table for the result: a's names, then b's new ones.
  *out.kind_names = *a.kind_names;
  std::unordered_map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < out.kind_names->size(); ++i) {
    index[(*out.kind_names)[i]] = i;
  }
  std::vector<uint32_t> b_kind(b.kind_names->size());
  for (uint32_t i = 0; i < b.kind_names->size(); ++i) {
    auto [it, added] = index.emplace((*b.kind_names)[i], index.size());
    if (added) out.kind_names->push_back((*b.kind_names)[i]);
    b_kind[i] = it->second;
  }
  auto take_a = [&](size_t i) {
    out.addresses.push_back(a.addresses[i]);
    out.kinds.push_back(a.kinds[i]);
    out.sizes.push_back(a.sizes[i]);
  };
  auto take_b = [&](size_t j) {
    out.addresses.push_back(b.addresses[j]);
    out.kinds.push_back(b_kind[b.kinds[j]]);
    out.sizes.push_back(b.sizes[j]);
  };
  size_t i = 0, j = 0;
  while (i < a.count() || j < b.count()) {
    bool in_a = i < a.count(), in_b = j < b.count();
    if (in_a && in_b && a.addresses[i] == b.addresses[j]) {
      if (op == '|' || op == '&') take_a(i);
      ++i, ++j;
    } else if (in_a && (!in_b || a.addresses[i] < b.addresses[j])) {
      if (op == '|' || op == '-' || op == '^') take_a(i);
      ++i;
    } else {
      if (op == '|' || op == '^') take_b(j);
      ++j;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HeapView>> HeapView::Create(Session& session) {
  auto access = session.Get<AnnexAccess>();
  if (!access.ok()) return access.status();
  python::AnnexRuntime& runtime = (*access)->runtime();
  auto engine = std::make_unique<heap::HeapEngine>(runtime.thread_states());
  // Annex's own footprint in the target never shows in a result.
  engine->Hide(heap::ObjectSet::FromUnsorted(runtime.target_footprint()));
  return std::unique_ptr<HeapView>(new HeapView(std::move(engine)));
}

KindedSet HeapView::Describe(const std::vector<uintptr_t>& sorted,
                             const std::vector<uint64_t>* sizes) {
  KindedSet out;
  std::unordered_map<PyTypeObject*, uint32_t> kind_of_type;
  out.addresses = sorted;
  out.kinds.reserve(sorted.size());
  out.sizes.reserve(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    PyObject* obj = reinterpret_cast<PyObject*>(sorted[i]);
    PyTypeObject* type = Py_TYPE(obj);
    auto [it, added] = kind_of_type.emplace(type, out.kind_names->size());
    if (added) out.kind_names->push_back(KindName(type));
    out.kinds.push_back(it->second);
    if (sizes != nullptr) {
      out.sizes.push_back((*sizes)[i]);
    } else {
      auto s = engine_->SizeOf(obj);
      out.sizes.push_back(s.ok() ? *s : 0);
    }
  }
  return out;
}

absl::StatusOr<KindedSet> HeapView::Heap() {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<heap::HeapGraph> graph = engine_->Graph();
  if (!graph.ok()) return graph.status();
  if (!has_ref_) return Describe(graph->addresses, &graph->sizes);
  std::vector<uintptr_t> fresh;
  std::vector<uint64_t> sizes;
  const heap::ObjectSet& ref = engine_->ref();
  for (uint32_t v = 0; v < graph->size(); ++v) {
    if (ref.contains(graph->addresses[v])) continue;
    fresh.push_back(graph->addresses[v]);
    sizes.push_back(graph->sizes[v]);
  }
  return Describe(fresh, &sizes);
}

absl::StatusOr<KindedSet> HeapView::HeapU() {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<heap::ObjectSet> set = engine_->Unreachable();
  if (!set.ok()) return set.status();
  // Found in the gc lists during this GIL hold: alive now.
  return Describe(set->ToVector(), nullptr);
}

absl::Status HeapView::SetRef() {
  absl::Status s = engine_->SetRef();
  if (s.ok()) has_ref_ = true;
  return s;
}

namespace {

// Node ids of the members of `set` present in `graph` (alive now).
heap::NodeSet LiveNodes(const heap::HeapGraph& graph, const KindedSet& set) {
  heap::NodeSet nodes;
  for (uintptr_t a : set.addresses) {
    int64_t v = graph.Find(a);
    if (v >= 0) nodes.push_back(static_cast<uint32_t>(v));
  }
  return nodes;
}

}  // namespace

absl::StatusOr<std::string> HeapView::ShortestPaths(const KindedSet& set,
                                                    size_t max_paths) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<heap::HeapGraph> graph = engine_->Graph();
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = LiveNodes(*graph, set);
  if (nodes.empty()) return std::string("(no member of the set is reachable now)\n");
  heap::ShortestPathOptions options;
  options.max_paths = max_paths;
  auto paths = heap::PathsTo(*graph, nodes, options);
  if (!paths.ok()) return paths.status();
  std::string out;
  for (size_t i = 0; i < paths->size(); ++i) {
    absl::StrAppendFormat(&out, "%2d: %s\n", i, (*paths)[i].text);
  }
  if (paths->empty()) out = "(no path from the roots)\n";
  return out;
}

absl::StatusOr<uint64_t> HeapView::RetainedSize(const KindedSet& set) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<heap::HeapGraph> graph = engine_->Graph();
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = LiveNodes(*graph, set);
  if (nodes.empty()) return uint64_t{0};
  std::sort(nodes.begin(), nodes.end());
  return heap::RetainedSize(*graph, nodes);
}

absl::StatusOr<std::string> HeapView::ById(const KindedSet& set, size_t limit) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<heap::HeapResult> now = engine_->Heap();
  if (!now.ok()) return now.status();
  std::string out;
  size_t shown = 0;
  for (size_t i = 0; i < set.count() && shown < limit; ++i) {
    if (!now->objects.contains(set.addresses[i])) continue;
    PyObject* obj = reinterpret_cast<PyObject*>(set.addresses[i]);
    // Still the same object? Same kind as recorded (an address can be reused).
    if (KindName(Py_TYPE(obj)) != (*set.kind_names)[set.kinds[i]]) continue;
    std::string value;
    if (PyUnicode_CheckExact(obj)) {
      value = python::Text(obj);
      if (value.size() > 60) value = value.substr(0, 57) + "...";
      value = " '" + value + "'";
    } else if (PyLong_CheckExact(obj) || PyFloat_CheckExact(obj) ||
               PyBool_Check(obj) || obj == Py_None) {
      PyObject* r = PyObject_Repr(obj);  // built-in repr: no target code
      if (r != nullptr) value = " " + python::Text(r);
      Py_XDECREF(r);
      PyErr_Clear();
    } else if (PyBytes_CheckExact(obj)) {
      value = absl::StrFormat(" <%d bytes>", PyBytes_GET_SIZE(obj));
    } else if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj) ||
               PyDict_CheckExact(obj) || PySet_CheckExact(obj)) {
      // Exact built-in containers: len() runs no target code.
      value = absl::StrFormat(" len=%d", PyObject_Length(obj));
    }
    absl::StrAppendFormat(&out, "0x%x %s %d bytes%s\n", set.addresses[i],
                          (*set.kind_names)[set.kinds[i]], set.sizes[i], value);
    ++shown;
  }
  if (shown == 0) out = "(no member of the set is alive now)\n";
  return out;
}

}  // namespace annex::glue
