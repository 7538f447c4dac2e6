// Lookups in a heap graph snapshot.
#include "monitor/heap/graph.h"

#include <algorithm>
#include <new>
#include <utility>

namespace annex::heap {

HeapGraph::~HeapGraph() {
  if (pool == nullptr) return;
  pool->Give(std::move(addresses));
  pool->Give(std::move(sizes));
  pool->Give(std::move(out_begin));
  pool->Give(std::move(out_targets));
}

HeapGraph& HeapGraph::operator=(HeapGraph&& other) noexcept {
  if (this != &other) {
    this->~HeapGraph();
    new (this) HeapGraph(std::move(other));
  }
  return *this;
}

int64_t HeapGraph::Find(uintptr_t address) const {
  auto it = std::lower_bound(addresses.begin(), addresses.end(), address);
  if (it == addresses.end() || *it != address) return -1;
  return it - addresses.begin();
}

int64_t HeapGraph::FindAscending(uintptr_t address, uint32_t* cursor) const {
  const size_t n = addresses.size();
  size_t lo = *cursor;
  if (lo >= n || addresses[lo] > address) {
    const int64_t v = Find(address);
    if (v >= 0) *cursor = static_cast<uint32_t>(v);
    return v;
  }
  // addresses[lo] <= address: double the step until past it.
  size_t step = 1;
  size_t hi = lo + 1;
  while (hi < n && addresses[hi] <= address) {
    lo = hi;
    step <<= 1;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  // addresses[lo] <= address < addresses[hi] (or hi == n): the last one
  // not above it.
  auto it = std::upper_bound(addresses.begin() + static_cast<ptrdiff_t>(lo),
                             addresses.begin() + static_cast<ptrdiff_t>(hi),
                             address) -
            1;
  *cursor = static_cast<uint32_t>(it - addresses.begin());
  return *it == address ? static_cast<int64_t>(*cursor) : -1;
}

}  // namespace annex::heap
