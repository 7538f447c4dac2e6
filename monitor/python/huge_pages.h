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
#include <vector>

namespace annex::python {

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
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + n * sizeof(T)) & ~(kHuge - 1);
  if (n * sizeof(T) >= 2 * kHuge && last > first) {
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

}  // namespace annex::python
