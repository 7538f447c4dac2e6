// The address index: a ranked bitmap over sorted addresses.
#include "monitor/heap/address_index.h"

#include <algorithm>

namespace annex::heap {

AddressIndex::AddressIndex(const std::vector<uintptr_t>& sorted)
    : sorted_(sorted) {
  auto bitmap = std::make_unique<internal::AddressBitmap>();
  // Ranks equal positions only for strictly ascending input.
  if (!bitmap->SetAscending(sorted.data(), sorted.data() + sorted.size())) {
    return;
  }
  // Fails for addresses the bitmap keeps aside (unaligned or above 2^48).
  if (!bitmap->BuildRank()) return;
  bitmap_ = std::move(bitmap);
}

int64_t AddressIndex::FindSlow(uintptr_t address) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), address);
  if (it == sorted_.end() || *it != address) return -1;
  return it - sorted_.begin();
}

size_t AddressIndex::MemoryBytes() const {
  return bitmap_ == nullptr ? 0 : bitmap_->MemoryBytes();
}

}  // namespace annex::heap
