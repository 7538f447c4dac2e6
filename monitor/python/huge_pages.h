// Fresh buffers of many megabytes for one question: backed by transparent
// huge pages where the kernel offers them on request.
//
// A question that walks a million objects writes ~100 MB of fresh
// vectors (the walk's records, the graph, a partition's columns);
// faulting them in 4 KiB at a time took a quarter to a third of such
// questions (0.2 ms per MB here; on a machine whose kernel runs in a VM
// with paravirtual page tables, 2-3 ms per MB), and growing a vector by
// doubling faults in twice the final size besides copying it.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace annex::python {

// A transparent huge page (x86-64).
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Makes room for `n` elements in `v` (empty, or as good as: only its
// capacity matters) and, when that takes 4 MiB or more (so that at least
// one whole 2 MiB page lies inside it), asks the kernel to back the whole
// 2 MiB pages inside it with transparent huge pages before anything
// touches them. A 4 MiB vector faulted in 4 KiB at a time is a thousand
// faults. Harmless where THP is off ("never");
// where it is "always" it changes nothing. Where: any thread.
template <typename T>
void ReserveHuge(std::vector<T>& v, size_t n) {
  v.reserve(n);
  constexpr uintptr_t kHuge = kHugePageBytes;
  // The element's size, whatever T is (a pointer for the walk's stack).
  constexpr size_t kElement = sizeof(T);  // NOLINT(bugprone-sizeof-expression)
  const uintptr_t begin = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + n * kElement) & ~(kHuge - 1);
  if (n * kElement >= 2 * kHuge && last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
}

// Moves `v`'s elements into fresh room for `n` (at least v.size()),
// reserved by ReserveHuge; the old memory is freed. Where: any thread.
template <typename T>
void MoveToHuge(std::vector<T>& v, size_t n) {
  std::vector<T> bigger;
  ReserveHuge(bigger, n);
  bigger.assign(v.begin(), v.end());
  v.swap(bigger);
}

// `n` copies of `value` in `v`, its memory reserved by ReserveHuge.
template <typename T>
void AssignHuge(std::vector<T>& v, size_t n, const T& value) {
  v.clear();
  ReserveHuge(v, n);
  v.assign(n, value);
}

// A copy of `v` in room reserved by ReserveHuge (a plain vector copy takes
// exactly its size from malloc, which for tens of megabytes is fresh 4 KiB
// pages). Where: any thread.
template <typename T>
std::vector<T> CopyHuge(const std::vector<T>& v) {
  std::vector<T> out;
  ReserveHuge(out, v.size());
  out.assign(v.begin(), v.end());
  return out;
}

// A vector whose copies are made by CopyHuge: a member of a class copied
// whole (glue's packed columns, when a classifier copies the set it
// labels), so that the class's implicit copies take huge pages and no
// hand-written copy constructor can forget a member added later. Moves
// and everything else are std::vector's. Where: any thread.
template <typename T>
class HugeCopiedVector : public std::vector<T> {
 public:
  using std::vector<T>::vector;
  HugeCopiedVector() = default;
  HugeCopiedVector(const HugeCopiedVector& o) : std::vector<T>(CopyHuge(o)) {}
  HugeCopiedVector(HugeCopiedVector&&) noexcept = default;
  HugeCopiedVector& operator=(const HugeCopiedVector& o) {
    if (this != &o) std::vector<T>::operator=(CopyHuge(o));
    return *this;
  }
  HugeCopiedVector& operator=(HugeCopiedVector&&) noexcept = default;
  ~HugeCopiedVector() = default;
};

// Frees what NewHugeArray allocated.
struct FreeHugeArray {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
using HugeArray = std::unique_ptr<T[], FreeHugeArray>;

// `n` elements of a trivial T, left unset: for per-node arrays whose every
// read follows a write (a search's distances), where filling the whole
// array would cost more than the search. From 4 MiB up the memory is
// aligned to 2 MiB and advised as ReserveHuge's, so that the pages the
// search touches are faulted in 2 MiB at a time (a plain new[] of 160 MB
// took ~50 000 faults of 4 KiB pages at 10M nodes). Throws std::bad_alloc
// as new[] does. Where: any thread.
template <typename T>
HugeArray<T> NewHugeArray(size_t n) {
  static_assert(std::is_trivially_default_constructible_v<T> &&
                std::is_trivially_destructible_v<T>);
  constexpr size_t kHuge = kHugePageBytes;
  const size_t bytes = n * sizeof(T) > 0 ? n * sizeof(T) : 1;
  void* p = nullptr;
  if (bytes >= 2 * kHuge) {
    const size_t rounded = (bytes + kHuge - 1) & ~(kHuge - 1);
    p = std::aligned_alloc(kHuge, rounded);
    if (p != nullptr) madvise(p, rounded, MADV_HUGEPAGE);
  } else {
    p = std::malloc(bytes);
  }
  if (p == nullptr) throw std::bad_alloc();
  return HugeArray<T>(static_cast<T*>(p));
}

}  // namespace annex::python
