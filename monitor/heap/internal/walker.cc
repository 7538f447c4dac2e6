// The heap walk's inner loop.
#include "monitor/heap/internal/walker.h"

#include <algorithm>

#include "monitor/python/huge_pages.h"
#include "monitor/python/version.h"

namespace annex::heap::internal {

Walker::Walker(const ExtensionRegistry* registry, Record record)
    : types_(registry),
      record_sizes_(record != Record::kNothing),
      record_edges_(record == Record::kEdges) {
  stack_.reserve(1024);
}

Walker::~Walker() {
  if (pool_ == nullptr) return;
  pool_->Give(std::move(order_));
  pool_->Give(std::move(order_sizes_));
  pool_->Give(std::move(order_edge_begin_));
  pool_->Give(std::move(edges_));
}

namespace {

// `v` (empty) with room for `n`: from `pool` when there is one.
template <typename T>
void ReserveFrom(BufferPool* pool, std::vector<T>& v, size_t n) {
  if (pool != nullptr && v.capacity() < n) {
    v = pool->Take<T>(n);
  } else {
    python::ReserveHuge(v, n);
  }
}

// `n` copies of `value` in `v`, its memory from `pool` when there is one.
template <typename T>
void AssignFrom(BufferPool* pool, std::vector<T>& v, size_t n, const T& value) {
  v.clear();
  ReserveFrom(pool, v, n);
  v.assign(n, value);
}

}  // namespace

template <typename T>
void Walker::Grow(std::vector<T>& v) {
  // A record a pool gave (Reserve) was big enough for the last walk: the
  // bigger one is fresh, and the old memory is freed, not kept.
  if (static_cast<const void*>(&v) != &stack_) {
    ++record_growths_;
  }
  python::GrowHuge(v, 1, size_t{1} << 16);
}

void Walker::Reserve(size_t objects, size_t edges) {
  if (!record_sizes_) return;
  ReserveFrom(pool_.get(), order_, objects);
  ReserveFrom(pool_.get(), order_sizes_, objects);
  if (record_edges_) {
    ReserveFrom(pool_.get(), order_edge_begin_, objects);
    ReserveFrom(pool_.get(), edges_, edges);
  }
}

void Walker::AddRoot(PyObject* obj) {
  if (obj == nullptr) return;
  if (stop_ != nullptr && stop_->Test(reinterpret_cast<uintptr_t>(obj))) return;
  if (!visited_.TestAndSet(reinterpret_cast<uintptr_t>(obj))) {
    Append(stack_, obj);
  }
}

// The visitproc handed to tp_traverse. Where: GIL held, target current.
int Walker::VisitPush(PyObject* obj, void* arg) {
  if (obj == nullptr) return 0;
  auto* self = static_cast<Walker*>(arg);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(obj);
  if (self->record_edges_) self->Append(self->edges_, addr);
  if (self->stop_ != nullptr && self->stop_->Test(addr)) return 0;
  // The stack grows as the records do (a list of ten million objects
  // pushes them all): into huge-page-backed room, not 4 KiB pages.
  if (!self->visited_.TestAndSet(addr)) self->Append(self->stack_, obj);
  return 0;
}

void Walker::Run() {
  while (!stack_.empty()) {
    if (question_stop_ != nullptr && question_stop_->Poll()) {
      stack_.clear();
      return;
    }
    PyObject* obj = stack_.back();
    stack_.pop_back();
    TypeInfo& info = types_.Get(Py_TYPE(obj));
    uint64_t values;
    const uint64_t size = types_.Size(obj, info, sizing_, &values);
    inline_values_bytes_ += values;
    ++count_;
    total_bytes_ += size;
    if (record_sizes_) {
      Append(order_, reinterpret_cast<uintptr_t>(obj));
      Append(order_sizes_, size);
      if (record_edges_) {
        Append(order_edge_begin_, static_cast<uint64_t>(edges_.size()));
      }
    }
    if (TypeInfoCache::Traversable(obj, info)) {
      if (info.ext != nullptr && info.ext->traverse) {
        info.ext->traverse(obj, &VisitPush, this);
      } else {
        info.traverse(obj, &VisitPush, this);
      }
    }
    if (info.extras != nullptr) info.extras(obj, &VisitPush, this);
    if (info.is_dict) {
      // dict_traverse skips the keys of str-keyed dicts (strings cannot form
      // cycles), so gc.get_referents never reports them; a heap view must.
      // PyDict_Next reads the table only and runs no Python code.
      Py_ssize_t pos = 0;
      PyObject* key;
      PyObject* value;
      while (PyDict_Next(obj, &pos, &key, &value)) VisitPush(key, this);
    }
    if (info.is_frame) {
      python::VisitLiveFrameLocals(reinterpret_cast<PyFrameObject*>(obj),
                                   &VisitPush, this);
    }
  }
}

void Walker::FillGraph(HeapGraph* g) {
  BufferPool* pool = pool_.get();
  if (pool != nullptr && g->pool == nullptr) g->pool = pool_;
  g->addresses.clear();
  ReserveFrom(pool, g->addresses, count_);
  visited_.ForEach([&](uintptr_t a) { g->addresses.push_back(a); });
  const size_t n = g->addresses.size();
  // Address -> node id: O(1) by rank in the bitmap, else binary search.
  const bool ranked = visited_.BuildRank();
  auto id_of = [&](uintptr_t a) -> uint32_t {
    return static_cast<uint32_t>(ranked ? visited_.Rank(a) : g->Find(a));
  };
  // The same for an address that may not be a node (an edge to a hidden
  // or stopped object): -1 then.
  auto id_if_node = [&](uintptr_t a) -> int64_t {
    if (ranked) return visited_.RankIfSet(a);
    return visited_.Test(a) ? g->Find(a) : -1;
  };
  AssignFrom(pool, g->sizes, n, uint64_t{0});
  // Records are in walk order, scattered over the heap: each one's bitmap
  // word and rank are fetched this many records ahead.
  constexpr size_t kPrefetchAhead = 16;
  // The passes over the records run in slices on the lanes (lanes.h): a
  // record's writes go to its own node (each node is recorded once) and
  // its own edges, so no two slices write the same element; the bitmap
  // and ranks are only read.
  const size_t records = order_.size();
  if (!record_edges_) {
    lanes_.For(records, [&](size_t from, size_t to) {
      for (size_t i = from; i < to; ++i) {
        if (ranked && i + kPrefetchAhead < to) {
          visited_.PrefetchRank(order_[i + kPrefetchAhead]);
        }
        g->sizes[id_of(order_[i])] = order_sizes_[i];
      }
    });
    AssignFrom(pool, g->out_begin, n + 1, uint32_t{0});
    g->out_targets.clear();
    return;
  }
  // Each edge's target becomes its node id once, in place in `edges_`
  // (kDropped for a target not in the graph: hidden, or stopped), and
  // each node's degree goes to out_begin[id + 1] (every node is recorded
  // once); a running sum then turns degrees into offsets in place, and a
  // second pass, in record order, copies the ids into place. The targets come
  // in walk order too: each lookup's bitmap word and rank are fetched
  // kPrefetchAhead edges ahead.
  constexpr uintptr_t kDropped = ~uintptr_t{0};
  std::vector<uint32_t> id_of_order;
  AssignFrom(pool, id_of_order, order_.size(), uint32_t{0});
  AssignFrom(pool, g->out_begin, n + 1, uint32_t{0});
  uint32_t* degree = g->out_begin.data() + 1;
  const size_t edge_total = edges_.size();
  auto edges_end = [&](size_t i) -> uint64_t {
    return i + 1 < records ? order_edge_begin_[i + 1] : edge_total;
  };
  lanes_.For(records, [&](size_t from, size_t to) {
    const uint64_t slice_end = edges_end(to - 1);
    for (size_t i = from; i < to; ++i) {
      if (ranked && i + kPrefetchAhead < to) {
        visited_.PrefetchRank(order_[i + kPrefetchAhead]);
      }
      const uint32_t id = id_of(order_[i]);
      id_of_order[i] = id;
      g->sizes[id] = order_sizes_[i];
      const uint64_t end = edges_end(i);
      uint32_t d = 0;
      for (uint64_t e = order_edge_begin_[i]; e < end; ++e) {
        if (ranked && e + kPrefetchAhead < slice_end) {
          visited_.PrefetchRank(edges_[e + kPrefetchAhead]);
        }
        const int64_t target = id_if_node(edges_[e]);
        edges_[e] = target < 0 ? kDropped : static_cast<uintptr_t>(target);
        d += target < 0 ? 0 : 1;
      }
      degree[id] = d;
    }
  });
  for (size_t v = 0; v < n; ++v) g->out_begin[v + 1] += g->out_begin[v];
  AssignFrom(pool, g->out_targets, size_t{g->out_begin[n]}, uint32_t{0});
  lanes_.For(records, [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const uint64_t end = edges_end(i);
      uint32_t out = g->out_begin[id_of_order[i]];
      for (uint64_t e = order_edge_begin_[i]; e < end; ++e) {
        if (edges_[e] == kDropped) continue;
        g->out_targets[out++] = static_cast<uint32_t>(edges_[e]);
      }
    }
  });
  if (pool != nullptr) pool->Give(std::move(id_of_order));
}

}  // namespace annex::heap::internal
