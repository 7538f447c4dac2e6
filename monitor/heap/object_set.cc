// ObjectSet: block-delta encoding and merge-based set algebra.
#include "monitor/heap/object_set.h"

#include <algorithm>

namespace annex::heap {
namespace {

inline void PutVarint(std::vector<uint8_t>& out, uintptr_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

inline uintptr_t GetVarint(const uint8_t*& p) {
  uintptr_t v = 0;
  int s = 0;
  while (*p & 0x80) {
    v |= uintptr_t{static_cast<uint8_t>(*p & 0x7f)} << s;
    s += 7;
    ++p;
  }
  v |= uintptr_t{*p} << s;
  ++p;
  return v;
}

// Merges two sets; `keep(in_a, in_b)` decides whether an element goes out.
template <typename Keep>
ObjectSet Merge(const ObjectSet& a, const ObjectSet& b, Keep keep) {
  ObjectSet::Builder out;
  auto ia = a.begin(), ea = a.end();
  auto ib = b.begin(), eb = b.end();
  while (ia != ea || ib != eb) {
    if (ib == eb || (ia != ea && *ia < *ib)) {
      if (keep(true, false)) out.Add(*ia);
      ++ia;
    } else if (ia == ea || *ib < *ia) {
      if (keep(false, true)) out.Add(*ib);
      ++ib;
    } else {
      if (keep(true, true)) out.Add(*ia);
      ++ia;
      ++ib;
    }
  }
  return std::move(out).Build();
}

}  // namespace

void ObjectSet::Builder::Add(uintptr_t addr) {
  if (size_ > 0 && addr <= last_) return;
  if (shift_ != 0 && (addr & 7) != 0) SwitchToRawDeltas();
  if (size_ % kBlock == 0) {
    block_first_.push_back(addr);
    block_offset_.push_back(static_cast<uint32_t>(bytes_.size()));
  } else {
    PutVarint(bytes_, (addr - last_) >> shift_);
  }
  last_ = addr;
  ++size_;
}

void ObjectSet::Builder::SwitchToRawDeltas() {
  // Only for addresses that are not 8-byte aligned, i.e. never for objects.
  std::vector<uint8_t> raw;
  const uint8_t* p = bytes_.data();
  for (size_t b = 0; b < block_first_.size(); ++b) {
    block_offset_[b] = static_cast<uint32_t>(raw.size());
    const size_t n = std::min(kBlock, size_ - b * kBlock) - 1;
    for (size_t i = 0; i < n; ++i) PutVarint(raw, GetVarint(p) << shift_);
  }
  bytes_ = std::move(raw);
  shift_ = 0;
}

ObjectSet ObjectSet::Builder::Build() && {
  ObjectSet s;
  s.size_ = size_;
  s.shift_ = shift_;
  bytes_.shrink_to_fit();
  block_first_.shrink_to_fit();
  block_offset_.shrink_to_fit();
  s.bytes_ = std::move(bytes_);
  s.block_first_ = std::move(block_first_);
  s.block_offset_ = std::move(block_offset_);
  return s;
}

ObjectSet::const_iterator::const_iterator(const ObjectSet* set, size_t index)
    : set_(set), index_(index) {
  if (index_ < set_->size_) Load();
}

void ObjectSet::const_iterator::Load() {
  const size_t b = index_ / kBlock;
  value_ = set_->block_first_[b];
  p_ = set_->bytes_.data() + set_->block_offset_[b];
}

ObjectSet::const_iterator& ObjectSet::const_iterator::operator++() {
  ++index_;
  if (index_ >= set_->size_) return *this;
  if (index_ % kBlock == 0) {
    Load();
  } else {
    value_ += GetVarint(p_) << set_->shift_;
  }
  return *this;
}

ObjectSet ObjectSet::FromUnsorted(std::vector<uintptr_t> addresses) {
  std::sort(addresses.begin(), addresses.end());
  Builder b;
  for (uintptr_t a : addresses) b.Add(a);
  return std::move(b).Build();
}

bool ObjectSet::contains(uintptr_t addr) const {
  auto it = std::upper_bound(block_first_.begin(), block_first_.end(), addr);
  if (it == block_first_.begin()) return false;
  const size_t b = (it - block_first_.begin()) - 1;
  uintptr_t v = block_first_[b];
  if (v == addr) return true;
  const uint8_t* p = bytes_.data() + block_offset_[b];
  const size_t n = std::min(kBlock, size_ - b * kBlock) - 1;
  for (size_t i = 0; i < n; ++i) {
    v += GetVarint(p) << shift_;
    if (v >= addr) return v == addr;
  }
  return false;
}

std::vector<uintptr_t> ObjectSet::ToVector() const {
  std::vector<uintptr_t> v;
  v.reserve(size_);
  for (uintptr_t a : *this) v.push_back(a);
  return v;
}

size_t ObjectSet::MemoryBytes() const {
  return bytes_.capacity() + block_first_.capacity() * sizeof(uintptr_t) +
         block_offset_.capacity() * sizeof(uint32_t);
}

bool ObjectSet::IsSubsetOf(const ObjectSet& other) const {
  if (size_ > other.size_) return false;
  auto ia = begin(), ea = end();
  auto ib = other.begin(), eb = other.end();
  while (ia != ea) {
    while (ib != eb && *ib < *ia) ++ib;
    if (ib == eb || *ib != *ia) return false;
    ++ia;
    ++ib;
  }
  return true;
}

ObjectSet operator|(const ObjectSet& a, const ObjectSet& b) {
  return Merge(a, b, [](bool, bool) { return true; });
}
ObjectSet operator&(const ObjectSet& a, const ObjectSet& b) {
  return Merge(a, b, [](bool x, bool y) { return x && y; });
}
ObjectSet operator-(const ObjectSet& a, const ObjectSet& b) {
  return Merge(a, b, [](bool x, bool y) { return x && !y; });
}
ObjectSet operator^(const ObjectSet& a, const ObjectSet& b) {
  return Merge(a, b, [](bool x, bool y) { return x != y; });
}
bool operator==(const ObjectSet& a, const ObjectSet& b) {
  if (a.size_ != b.size_) return false;
  auto ia = a.begin(), ib = b.begin();
  for (; ia != a.end(); ++ia, ++ib) {
    if (*ia != *ib) return false;
  }
  return true;
}

}  // namespace annex::heap
