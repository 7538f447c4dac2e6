// Compact columns of a KindedSet (see packed_columns.h).
#include "glue/packed_columns.h"

#include <algorithm>

#include "monitor/python/huge_pages.h"

namespace annex::glue {

// Columns of millions of members are written once, fresh: their room is
// taken through python::ReserveHuge (huge pages where the kernel offers
// them), which at 10M members turned ~100 000 faults of 4 KiB pages per
// question into a few hundred.

PackedAddresses PackedAddresses::From(const std::vector<uintptr_t>& v) {
  PackedAddresses out;
  out.reserve(v.size());
  // Whole blocks straight from `v` (no copy through the tail).
  const size_t full = v.size() / kBlock;
  for (size_t b = 0; b < full; ++b) out.SealBlock(v.data() + b * kBlock);
  out.size_ = full * kBlock;
  for (size_t i = full * kBlock; i < v.size(); ++i) out.push_back(v[i]);
  return out;
}

namespace {

size_t CountOf(const IndexRuns& runs) {
  size_t n = 0;
  for (const IndexRun& r : runs) n += r.count;
  return n;
}

// A packed address block's kBlock offsets of type W (from `base`, in
// units of 1 << shift) and back. W is uint16_t, uint32_t or uint64_t.
template <typename W>
void UnpackOffsets(const uint8_t* p, uintptr_t base, int shift,
                   uintptr_t* out) {
  for (size_t j = 0; j < PackedAddresses::kBlock; ++j) {
    W x;
    std::memcpy(&x, p + sizeof(W) * j, sizeof(W));
    out[j] = base + (static_cast<uintptr_t>(x) << shift);
  }
}
template <typename W>
void PackOffsets(const uintptr_t* block, uintptr_t base, int shift,
                 uint8_t* p) {
  for (size_t j = 0; j < PackedAddresses::kBlock; ++j) {
    const W x = static_cast<W>((block[j] - base) >> shift);
    std::memcpy(p + sizeof(W) * j, &x, sizeof(W));
  }
}

// f(W{}) for the offset type W of width code `code` (0: 2 bytes, 1: 4,
// 2: 8).
template <typename F>
void WithOffsetType(int code, F&& f) {
  switch (code) {
    case 0:
      f(uint16_t{});
      break;
    case 1:
      f(uint32_t{});
      break;
    default:
      f(uint64_t{});
      break;
  }
}

// memcpy, without its call for the few bytes of a run of one or two
// members (a row of a partition is mostly such runs).
inline void CopyBytes(uint8_t* to, const uint8_t* from, size_t n) {
  if (n <= 8) {
    for (size_t b = 0; b < n; ++b) to[b] = from[b];
  } else {
    std::memcpy(to, from, n);
  }
}

}  // namespace

PackedAddresses PackedAddresses::Gather(
    const std::vector<size_t>& indexes) const {
  PackedAddresses out;
  out.reserve(indexes.size());
  uintptr_t block[kBlock];
  size_t filled = 0;
  for (size_t i : indexes) {
    block[filled++] = (*this)[i];
    if (filled == kBlock) {
      out.SealBlock(block);
      filled = 0;
    }
  }
  out.size_ = indexes.size() - filled;
  for (size_t j = 0; j < filled; ++j) out.push_back(block[j]);
  return out;
}

PackedAddresses PackedAddresses::Gather(const IndexRuns& runs) const {
  const size_t n = CountOf(runs);
  PackedAddresses out;
  out.reserve(n);
  uintptr_t source[kBlock];
  size_t unpacked = SIZE_MAX;  // the source block in `source`
  uintptr_t block[kBlock];
  size_t filled = 0;
  for (const IndexRun& r : runs) {
    const size_t end = r.first + r.count;
    for (size_t i = r.first; i < end; ++i) {
      // A whole packed block kept where a block of the output starts
      // (everything before a set's first dead member) is copied packed.
      if (filled == 0 && i % kBlock == 0 && i + kBlock <= end &&
          i / kBlock < base_.size()) {
        out.CopyBlock(*this, i / kBlock);
        i += kBlock - 1;
        continue;
      }
      if (i / kBlock != unpacked) {
        unpacked = i / kBlock;
        Unpack(unpacked, source);
      }
      block[filled++] = source[i % kBlock];
      if (filled == kBlock) {
        out.SealBlock(block);
        filled = 0;
      }
    }
  }
  out.size_ = n - filled;
  for (size_t j = 0; j < filled; ++j) out.push_back(block[j]);
  return out;
}

void PackedAddresses::CopyBlock(const PackedAddresses& from, size_t b) {
  const size_t width = size_t{2} << (from.form_[b] & 3);
  const uint8_t* p = from.bytes_.data() + size_t{from.offset_[b]} * kUnit;
  const size_t at = bytes_.size();
  python::GrowHuge(bytes_, width * kBlock);
  bytes_.insert(bytes_.end(), p, p + width * kBlock);
  base_.push_back(from.base_[b]);
  offset_.push_back(static_cast<uint32_t>(at / kUnit));
  form_.push_back(from.form_[b]);
}

void PackedAddresses::Unpack(size_t b, uintptr_t* out) const {
  if (b >= base_.size()) {
    std::copy(tail_.begin(), tail_.end(), out);
    return;
  }
  const uint8_t* p = bytes_.data() + size_t{offset_[b]} * kUnit;
  const uintptr_t base = base_[b];
  const int shift = form_[b] >> 2;
  WithOffsetType(form_[b] & 3, [&](auto w) {
    UnpackOffsets<decltype(w)>(p, base, shift, out);
  });
}

void PackedAddresses::reserve(size_t n) {
  // A dense set's blocks take 2 bytes per member; sparse ones grow.
  python::ReserveHuge(bytes_, n * 2);
  const size_t blocks = n / kBlock;
  base_.reserve(blocks);
  offset_.reserve(blocks);
  form_.reserve(blocks);
  tail_.reserve(kBlock);
}

void PackedAddresses::clear() {
  bytes_.clear();
  base_.clear();
  offset_.clear();
  form_.clear();
  tail_.clear();
  size_ = 0;
}

void PackedAddresses::shrink_to_fit() {
  python::ShrinkHuge(bytes_);
  base_.shrink_to_fit();
  offset_.shrink_to_fit();
  form_.shrink_to_fit();
  if (tail_.empty()) {
    std::vector<uintptr_t>().swap(tail_);
  } else {
    tail_.shrink_to_fit();
  }
}

void PackedAddresses::Seal() {
  SealBlock(tail_.data());
  tail_.clear();
}

void PackedAddresses::SealBlock(const uintptr_t* block) {
  // One pass: the smallest and largest address, and whether all are
  // congruent modulo 8 (then so are their offsets from the smallest).
  uintptr_t base = block[0], top = block[0], low_bits = 0;
  for (size_t j = 1; j < kBlock; ++j) {
    base = std::min(base, block[j]);
    top = std::max(top, block[j]);
    low_bits |= block[j] ^ block[0];
  }
  const int shift = (low_bits & 7) == 0 ? 3 : 0;
  const uintptr_t span = (top - base) >> shift;
  const int code = span <= 0xffff ? 0 : span <= 0xffffffffu ? 1 : 2;
  const size_t width = size_t{2} << code;
  const size_t at = bytes_.size();
  // Beyond reserve()'s 2 bytes per member when blocks are sparse (a 10M
  // heap's are): grown into huge pages.
  python::GrowHuge(bytes_, width * kBlock);
  bytes_.resize(at + width * kBlock);
  uint8_t* p = bytes_.data() + at;
  // One loop per width (the width decided once per block, not per member).
  WithOffsetType(
      code, [&](auto w) { PackOffsets<decltype(w)>(block, base, shift, p); });
  base_.push_back(base);
  offset_.push_back(static_cast<uint32_t>(at / kUnit));
  form_.push_back(static_cast<uint8_t>(code | (shift << 2)));
}

std::vector<uintptr_t> PackedAddresses::ToVector() const {
  std::vector<uintptr_t> out;
  python::ReserveHuge(out, size_);
  // A block at a time, its width decided once.
  uintptr_t block[kBlock];
  for (size_t b = 0; b < base_.size(); ++b) {
    Unpack(b, block);
    out.insert(out.end(), block, block + kBlock);
  }
  out.insert(out.end(), tail_.begin(), tail_.end());
  return out;
}

size_t PackedAddresses::MemoryBytes() const {
  return bytes_.capacity() + base_.capacity() * sizeof(uintptr_t) +
         offset_.capacity() * sizeof(uint32_t) + form_.capacity() +
         tail_.capacity() * sizeof(uintptr_t);
}

bool operator==(const PackedAddresses& a, const PackedAddresses& b) {
  if (a.size_ != b.size_) return false;
  for (size_t i = 0; i < a.size_; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

PackedUints PackedUints::From(const std::vector<uint32_t>& v) {
  uint32_t max = 0;
  for (uint32_t x : v) max = std::max(max, x);
  return From(v, max);
}

PackedUints PackedUints::From(const std::vector<uint32_t>& v, uint32_t max) {
  PackedUints out;
  if (max > out.max_) out.Widen(max);
  python::AssignHuge(out.bytes_, v.size() * out.width_, uint8_t{0});
  out.size_ = v.size();
  uint8_t* p = out.bytes_.data();
  const size_t n = v.size();
  switch (out.width_) {
    case 1:
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v[i]);
      break;
    case 2:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t x = static_cast<uint16_t>(v[i]);
        std::memcpy(p + 2 * i, &x, 2);
      }
      break;
    default:
      std::memcpy(p, v.data(), 4 * n);
      break;
  }
  return out;
}

PackedUints PackedUints::Gather(const std::vector<size_t>& indexes) const {
  PackedUints out;
  out.width_ = width_;
  out.max_ = max_;
  out.size_ = indexes.size();
  python::AssignHuge(out.bytes_, out.size_ * width_, uint8_t{0});
  uint8_t* to = out.bytes_.data();
  const uint8_t* from = bytes_.data();
  const size_t n = indexes.size();
  switch (width_) {
    case 1:
      for (size_t k = 0; k < n; ++k) to[k] = from[indexes[k]];
      break;
    case 2:
      for (size_t k = 0; k < n; ++k)
        std::memcpy(to + 2 * k, from + 2 * indexes[k], 2);
      break;
    default:
      for (size_t k = 0; k < n; ++k)
        std::memcpy(to + 4 * k, from + 4 * indexes[k], 4);
      break;
  }
  return out;
}

PackedUints PackedUints::Gather(const IndexRuns& runs) const {
  PackedUints out;
  out.width_ = width_;
  out.max_ = max_;
  const size_t w = static_cast<size_t>(width_);
  out.size_ = CountOf(runs);
  python::AssignHuge(out.bytes_, out.size_ * w, uint8_t{0});
  uint8_t* to = out.bytes_.data();
  for (const IndexRun& r : runs) {
    CopyBytes(to, bytes_.data() + r.first * w, r.count * w);
    to += r.count * w;
  }
  return out;
}

void PackedUints::Widen(uint32_t v) {
  const int width = v <= 0xff ? 1 : v <= 0xffff ? 2 : 4;
  if (width <= width_) return;
  std::vector<uint32_t> old = ToVector();
  const size_t room = bytes_.size() / width_;
  width_ = width;
  max_ = width == 2 ? 0xffff : 0xffffffffu;
  std::vector<uint8_t>().swap(bytes_);
  python::AssignHuge(bytes_, std::max(room, size_) * width_, uint8_t{0});
  for (size_t i = 0; i < size_; ++i) Store(i, old[i]);
}

void PackedUints::Grow(size_t n) {
  GrowBytes(std::max({n, size_t{16}, 2 * (bytes_.size() / width_)}) * width_);
}

void PackedUints::GrowBytes(size_t bytes) {
  if (bytes > bytes_.capacity()) python::MoveToHuge(bytes_, bytes);
  bytes_.resize(bytes);
}

void PackedUints::resize(size_t n) {
  if (n * width_ > bytes_.size()) GrowBytes(n * width_);
  if (n > size_) {
    std::fill(bytes_.begin() + size_ * width_, bytes_.begin() + n * width_, 0);
  }
  size_ = n;
}

void PackedUints::assign(size_t n, uint32_t v) {
  clear();
  if (v > max_) Widen(v);
  if (n * width_ > bytes_.size()) GrowBytes(n * width_);
  size_ = n;
  if (v == 0) {
    std::fill(bytes_.begin(), bytes_.begin() + n * width_, 0);
  } else {
    for (size_t i = 0; i < n; ++i) Store(i, v);
  }
}

std::vector<uint32_t> PackedUints::ToVector() const {
  std::vector<uint32_t> out;
  python::ReserveHuge(out, size_);
  ForEach([&out](uint32_t x) { out.push_back(x); });
  return out;
}

bool operator==(const PackedUints& a, const PackedUints& b) {
  if (a.size_ != b.size_) return false;
  if (a.width_ == b.width_) {
    return std::equal(a.bytes_.begin(), a.bytes_.begin() + a.size_ * a.width_,
                      b.bytes_.begin());
  }
  for (size_t i = 0; i < a.size_; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

void PackedSizes::reserve(size_t n) { python::ReserveHuge(small_, n); }

PackedSizes PackedSizes::From(const std::vector<uint64_t>& v) {
  PackedSizes out;
  python::AssignHuge(out.small_, v.size(), uint16_t{0});
  uint16_t* small = out.small_.data();
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < kEscape) {
      small[i] = static_cast<uint16_t>(v[i]);
    } else {
      small[i] = kEscape;
      out.large_.emplace_back(i, v[i]);
    }
  }
  return out;
}

PackedSizes PackedSizes::Gather(const std::vector<size_t>& indexes) const {
  PackedSizes out;
  python::AssignHuge(out.small_, indexes.size(), uint16_t{0});
  for (size_t k = 0; k < indexes.size(); ++k) {
    const uint16_t s = small_[indexes[k]];
    out.small_[k] = s;
    if (s == kEscape) out.large_.emplace_back(k, Large(indexes[k]));
  }
  return out;
}

PackedSizes PackedSizes::Gather(const IndexRuns& runs) const {
  PackedSizes out;
  python::AssignHuge(out.small_, CountOf(runs), uint16_t{0});
  size_t at = 0;
  // The next large size to look at (large_ is in index order): runs
  // mostly ascend, so it only moves on.
  auto large = large_.begin();
  size_t last_end = 0;
  for (const IndexRun& r : runs) {
    CopyBytes(reinterpret_cast<uint8_t*>(out.small_.data() + at),
              reinterpret_cast<const uint8_t*>(small_.data() + r.first),
              r.count * sizeof(uint16_t));
    if (!large_.empty()) {
      if (r.first < last_end) {
        large = std::lower_bound(large_.begin(), large_.end(), r.first,
                                 [](const std::pair<size_t, uint64_t>& e,
                                    size_t k) { return e.first < k; });
      }
      while (large != large_.end() && large->first < r.first) ++large;
      for (; large != large_.end() && large->first < r.first + r.count;
           ++large) {
        out.large_.emplace_back(at + (large->first - r.first), large->second);
      }
      last_end = r.first + r.count;
    }
    at += r.count;
  }
  return out;
}

uint64_t PackedSizes::Large(size_t i) const {
  auto it = std::lower_bound(large_.begin(), large_.end(), i,
                             [](const std::pair<size_t, uint64_t>& e,
                                size_t k) { return e.first < k; });
  return it != large_.end() && it->first == i ? it->second : kEscape;
}

std::vector<uint64_t> PackedSizes::ToVector() const {
  std::vector<uint64_t> out;
  python::ReserveHuge(out, small_.size());
  out.assign(small_.begin(), small_.end());
  for (const auto& [i, s] : large_) out[i] = s;
  return out;
}

uint64_t PackedSizes::Total() const {
  uint64_t total = 0;
  for (uint16_t s : small_) total += s;
  for (const auto& e : large_) total += e.second - kEscape;
  return total;
}

}  // namespace annex::glue
