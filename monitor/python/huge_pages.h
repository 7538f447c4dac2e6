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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace annex::python {

// A transparent huge page (x86-64).
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Whether the kernel hands out transparent huge pages on request: its
// mode is "always" or "madvise", not "never" (an administrator's choice
// that MADV_COLLAPSE would otherwise override) and not unreadable. Read
// once. Where: any thread.
inline bool HugePagesOnRequest() {
  static const bool on_request = [] {
    std::FILE* f =
        std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == nullptr) return false;
    char line[128] = {};
    const bool read = std::fgets(line, sizeof(line), f) != nullptr;
    std::fclose(f);
    return read && std::strstr(line, "[never]") == nullptr;
  }();
  return on_request;
}

// Bytes a malloc'd block of this size or less is given beyond what was
// asked, in its mapping (glibc: a 16-byte chunk header, the size rounded
// to 16 and then the mapping to 4 KiB; some slack for other allocators).
inline constexpr size_t kMallocSlack = 64;

// Makes room for `n` elements in `v` (empty, or as good as: only its
// capacity matters) and, when that takes 2 MiB or more, asks the kernel to
// back it with transparent huge pages before anything touches it. A 4 MiB
// vector faulted in 4 KiB at a time is a thousand faults: about 16 ms on
// this kind of VM, against 0.4 ms in huge pages. (Until session 26 this
// began at 4 MiB, which left the 4-byte-per-object vectors of a million
// objects, just under that, in 4 KiB pages.)
//
// Such room is rounded up to just under a whole number of 2 MiB pages, so
// that malloc maps a whole number of them (it maps blocks this large on
// their own): Linux places an anonymous mapping of such a length on a
// 2 MiB boundary, and then every page of it can be huge, where an
// unaligned mapping's first and last part (up to 4 MiB between them, a
// thousand 4 KiB faults) could not. The rounding costs address space,
// and memory only up to the end of the huge page holding the last
// element written (a huge page is faulted in whole): less than 2 MiB a
// vector, at most as much again as a vector of 2 MiB. Harmless where THP
// is off ("never"), where the kernel does not align and where malloc
// does not map (then only the whole 2 MiB pages inside the room can be
// huge, as before the rounding); where THP is "always" only the rounding
// matters. Where: any thread.
template <typename T>
void ReserveHuge(std::vector<T>& v, size_t n) {
  constexpr uintptr_t kHuge = kHugePageBytes;
  // The element's size, whatever T is (a pointer for the walk's stack).
  constexpr size_t kElement = sizeof(T);  // NOLINT(bugprone-sizeof-expression)
  if (n * kElement < kHuge || n <= v.capacity()) {
    v.reserve(n);
    return;
  }
  const size_t pages = (n * kElement + kMallocSlack + kHuge - 1) / kHuge;
  v.reserve((pages * kHuge - kMallocSlack) / kElement);
  // The pages the room touches, whole: with a mapping of its own that is
  // the whole mapping (its first bytes are malloc's header, its last the
  // rounding to 4 KiB), so that the advice does not split it and leave
  // its first or last 2 MiB to small pages.
  constexpr uintptr_t kPage = 4096;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(v.data()) & ~(kPage - 1);
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(v.data() + v.capacity()) + kPage - 1) &
      ~(kPage - 1);
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  // malloc wrote its header into the mapping's first page before the
  // advice, so that page is a small one and its 2 MiB would stay small
  // pages: collapsed into a huge page now (Linux 6.1 on; elsewhere the
  // call fails and those 2 MiB fault in 4 KiB at a time, as before).
  // Not where huge pages are off: a collapse does not ask the mode.
  constexpr int kCollapse = 25;  // MADV_COLLAPSE, where headers lack it
  if (begin % kHuge == 0 && end - begin >= kHuge && HugePagesOnRequest()) {
    madvise(reinterpret_cast<void*>(begin), kHuge, kCollapse);
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

// Room in `v` for `more` elements past its size: when its capacity falls
// short, its elements move (MoveToHuge) into room for at least twice that
// capacity, and at least `least` elements. For vectors that grow to
// megabytes one element or block at a time: std::vector's own doubling
// copies into exactly sized malloc memory, which at that size is fresh
// 4 KiB pages each time. Where: any thread.
template <typename T>
void GrowHuge(std::vector<T>& v, size_t more, size_t least = size_t{1} << 10) {
  const size_t need = v.size() + more;
  if (need > v.capacity()) {
    MoveToHuge(v, std::max({need, 2 * v.capacity(), least}));
  }
}

// Gives back `v`'s spare room when that is worth a copy: more than
// ReserveHuge's rounding (under a huge page) and more than an eighth of
// what `v` holds. shrink_to_fit would copy a vector of tens of megabytes
// into fresh 4 KiB pages for the rounding alone. Where: any thread.
template <typename T>
void ShrinkHuge(std::vector<T>& v) {
  constexpr size_t kElement = sizeof(T);  // NOLINT(bugprone-sizeof-expression)
  const size_t spare = (v.capacity() - v.size()) * kElement;
  if (spare <= kHugePageBytes || spare <= v.size() * kElement / 8) return;
  MoveToHuge(v, v.size());
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
// array would cost more than the search. From 2 MiB up the memory is
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
  if (bytes >= kHuge) {
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
