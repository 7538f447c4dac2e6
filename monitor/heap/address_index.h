// AddressIndex: the position of an address in an ascending vector of
// addresses, found in O(1) instead of a binary search. Built from the
// addresses alone (one bit per 8 bytes of address space with a rank index,
// the walk's visited-set structure), so building it never touches an
// object; the vector must outlive the index.
//
//   AddressIndex index(graph.addresses);
//   int64_t v = index.Find(address);   // node id, or -1
//
// Lookups of nearby addresses touch nearby memory, so a scan that follows
// the heap's own layout stays in cache. Plain data: any thread; const
// methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "monitor/heap/internal/address_bitmap.h"

namespace annex::heap {

class AddressIndex {
 public:
  // `sorted`: ascending addresses. With duplicates, or addresses the bitmap
  // cannot hold (unaligned, above 2^48), lookups fall back to a binary
  // search over `sorted` (which then finds the first of equal addresses).
  explicit AddressIndex(const std::vector<uintptr_t>& sorted);

  AddressIndex(const AddressIndex&) = delete;
  AddressIndex& operator=(const AddressIndex&) = delete;

  // The position of `address` in the vector, or -1 when it is not there.
  int64_t Find(uintptr_t address) const {
    if (bitmap_ == nullptr) return FindSlow(address);
    return bitmap_->RankIfSet(address);
  }

  // Bytes held by the index itself.
  size_t MemoryBytes() const;

 private:
  int64_t FindSlow(uintptr_t address) const;

  const std::vector<uintptr_t>& sorted_;
  std::unique_ptr<internal::AddressBitmap> bitmap_;  // null: binary search
};

}  // namespace annex::heap
