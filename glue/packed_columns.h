// Compact columns for the members of a KindedSet (heap_view.h): what a kept
// set (annex.IdSet) holds per object in the host's memory. A plain
// vector-of-structs took 24 bytes per object (address 8, kind 4, size 8,
// Clodo kind 4); these take about 6 (measured figures in docs/hp.md,
// "Memory budget"), with O(1) random access, so every loop over a set
// reads them as it read the vectors.
//
//   PackedAddresses a;            // any order; sorted packs best
//   a.push_back(0x7f0000001000);
//   uintptr_t x = a[0];
//   PackedUints kinds = PackedUints::From(std::vector<uint32_t>{3, 1, 4});
//   kinds.Set(1, 70000);          // widens the column to 4 bytes
//   PackedSizes sizes;  sizes.push_back(56);  sizes.push_back(1 << 20);
//
// - PackedAddresses: blocks of 64 addresses; per block its smallest
//   address and each member's offset from it, divided by 8 when every
//   offset is a multiple of 8 (object addresses always are), in 2, 4 or 8
//   bytes, whichever is the smallest that fits the block. A dense heap's
//   block spans a few KiB: 2 bytes per object plus 13 bytes per block. The
//   block being filled stays unpacked until it is full.
// - PackedUints: 32-bit values (kind and label indexes, "dictionary
//   coded": the names live once in the set's name table) in 1, 2 or 4
//   bytes each, the smallest width that holds the largest value so far; a
//   larger value widens the column once.
// - PackedSizes: 64-bit sizes in 2 bytes each; a size of 65535 or more is
//   an exception kept beside, as (index, size) in index order (a heap has
//   few objects that large).
//
// Values are copied out (operator[] returns by value); writes go through
// Set() or push_back(). Gather makes the column of a subset in one pass:
// Gather(indexes) the values at those indexes (a partition's row, spread
// over the set), Gather(runs) those of runs of consecutive indexes (a
// set less its few dead members: a few runs, each copied whole, addresses
// unpacked a block at a time). Plain C++ data: any thread; const methods
// may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

#include "monitor/python/huge_pages.h"

namespace annex::glue {

// The indexes [first, first + count) of a column.
struct IndexRun {
  size_t first;
  size_t count;
};
using IndexRuns = std::vector<IndexRun>;

// A random-access iterator over a packed column (reads by index).
template <typename Column, typename T>
class PackedIterator {
 public:
  using iterator_category = std::random_access_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = const T*;
  using reference = T;

  PackedIterator() = default;
  PackedIterator(const Column* c, size_t i) : c_(c), i_(i) {}
  T operator*() const { return (*c_)[i_]; }
  T operator[](difference_type n) const { return (*c_)[i_ + n]; }
  PackedIterator& operator++() {
    ++i_;
    return *this;
  }
  PackedIterator operator++(int) {
    PackedIterator o = *this;
    ++i_;
    return o;
  }
  PackedIterator& operator--() {
    --i_;
    return *this;
  }
  PackedIterator operator--(int) {
    PackedIterator o = *this;
    --i_;
    return o;
  }
  PackedIterator& operator+=(difference_type n) {
    i_ += n;
    return *this;
  }
  PackedIterator& operator-=(difference_type n) {
    i_ -= n;
    return *this;
  }
  friend PackedIterator operator+(PackedIterator it, difference_type n) {
    return it += n;
  }
  friend PackedIterator operator+(difference_type n, PackedIterator it) {
    return it += n;
  }
  friend PackedIterator operator-(PackedIterator it, difference_type n) {
    return it -= n;
  }
  friend difference_type operator-(const PackedIterator& a,
                                   const PackedIterator& b) {
    return static_cast<difference_type>(a.i_) -
           static_cast<difference_type>(b.i_);
  }
  friend bool operator==(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ == b.i_;
  }
  friend bool operator!=(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ != b.i_;
  }
  friend bool operator<(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ < b.i_;
  }
  friend bool operator>(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ > b.i_;
  }
  friend bool operator<=(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ <= b.i_;
  }
  friend bool operator>=(const PackedIterator& a, const PackedIterator& b) {
    return a.i_ >= b.i_;
  }

 private:
  const Column* c_ = nullptr;
  size_t i_ = 0;
};

class PackedAddresses {
 public:
  using const_iterator = PackedIterator<PackedAddresses, uintptr_t>;
  static constexpr size_t kBlock = 64;

  // Copies take the big column through python::CopyHuge (a live
  // classifier copies the whole set it labels): bytes_ is a
  // python::HugeCopiedVector.
  static PackedAddresses From(const std::vector<uintptr_t>& v);
  // The addresses at `indexes` / of `runs` (each within size()), in
  // that order.
  PackedAddresses Gather(const std::vector<size_t>& indexes) const;
  PackedAddresses Gather(const IndexRuns& runs) const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uintptr_t operator[](size_t i) const {
    const size_t b = i / kBlock;
    if (b >= base_.size()) return tail_[i % kBlock];
    const uint8_t* p = bytes_.data() + size_t{offset_[b]} * kUnit;
    const size_t j = i % kBlock;
    const uint8_t form = form_[b];
    uintptr_t v;
    switch (form & 3) {
      case 0: {
        uint16_t x;
        std::memcpy(&x, p + 2 * j, 2);
        v = x;
        break;
      }
      case 1: {
        uint32_t x;
        std::memcpy(&x, p + 4 * j, 4);
        v = x;
        break;
      }
      default: {
        uint64_t x;
        std::memcpy(&x, p + 8 * j, 8);
        v = x;
        break;
      }
    }
    return base_[b] + (v << (form >> 2));
  }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

  void push_back(uintptr_t a) {
    tail_.push_back(a);
    ++size_;
    if (tail_.size() == kBlock) Seal();
  }
  void reserve(size_t n);
  void clear();
  // Gives back spare capacity worth a copy (python::ShrinkHuge: a set
  // about to be kept).
  void shrink_to_fit();
  std::vector<uintptr_t> ToVector() const;
  // Bytes held (capacities).
  size_t MemoryBytes() const;

  friend bool operator==(const PackedAddresses& a, const PackedAddresses& b);
  friend bool operator!=(const PackedAddresses& a, const PackedAddresses& b) {
    return !(a == b);
  }

 private:
  void Seal();                             // packs the full tail_ as a block
  void SealBlock(const uintptr_t* block);  // packs kBlock addresses
  // Appends `from`'s packed block b as it is (this column's blocks so far
  // all full).
  void CopyBlock(const PackedAddresses& from, size_t b);
  // Block b's addresses into out[0, kBlock) (the tail's: its size only).
  void Unpack(size_t b, uintptr_t* out) const;
  python::HugeCopiedVector<uint8_t> bytes_;
  std::vector<uintptr_t> base_;  // smallest address of each block
  // Where its offsets start in bytes_, in kUnit bytes (every block takes a
  // multiple of it: 64 offsets of 2, 4 or 8 bytes), up to 512 GiB.
  static constexpr size_t kUnit = 2 * kBlock;
  std::vector<uint32_t> offset_;
  std::vector<uint8_t> form_;    // width code (0: 2, 1: 4, 2: 8) | shift << 2
  std::vector<uintptr_t> tail_;  // the block being filled
  size_t size_ = 0;
};

class PackedUints {
 public:
  using const_iterator = PackedIterator<PackedUints, uint32_t>;

  // Copies as PackedAddresses'.
  static PackedUints From(const std::vector<uint32_t>& v);
  // The same when no value of `v` exceeds `max` (read once, not found by
  // a pass over `v`): the width is the one `max` needs.
  static PackedUints From(const std::vector<uint32_t>& v, uint32_t max);
  // The values at `indexes` / of `runs` (each within size()), in that
  // order, at this column's width.
  PackedUints Gather(const std::vector<size_t>& indexes) const;
  PackedUints Gather(const IndexRuns& runs) const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint32_t operator[](size_t i) const {
    switch (width_) {
      case 1:
        return bytes_[i];
      case 2: {
        uint16_t x;
        std::memcpy(&x, bytes_.data() + 2 * i, 2);
        return x;
      }
      default: {
        uint32_t x;
        std::memcpy(&x, bytes_.data() + 4 * i, 4);
        return x;
      }
    }
  }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }
  // Bytes per value now (1, 2 or 4).
  int width() const { return width_; }

  void push_back(uint32_t v) {
    if (v > max_) Widen(v);
    if ((size_ + 1) * width_ > bytes_.size()) Grow(size_ + 1);
    Store(size_++, v);
  }
  void Set(size_t i, uint32_t v) {
    if (v > max_) Widen(v);
    Store(i, v);
  }
  void reserve(size_t n) {
    if (n * width_ > bytes_.size()) GrowBytes(n * width_);
  }
  // n values of `v` (the previous contents are dropped).
  void assign(size_t n, uint32_t v);
  // Values past the old size are 0.
  void resize(size_t n);
  void clear() {
    bytes_.clear();
    size_ = 0;
  }
  void shrink_to_fit() {
    bytes_.resize(size_ * width_);
    python::ShrinkHuge(bytes_);
  }
  std::vector<uint32_t> ToVector() const;
  size_t MemoryBytes() const { return bytes_.capacity(); }

  // Calls f(value) for each value in order, with the width decided once
  // (the loops of tables and partitions).
  template <typename F>
  void ForEach(F&& f) const {
    const uint8_t* p = bytes_.data();
    switch (width_) {
      case 1:
        for (size_t i = 0; i < size_; ++i) f(uint32_t{p[i]});
        break;
      case 2:
        for (size_t i = 0; i < size_; ++i) {
          uint16_t x;
          std::memcpy(&x, p + 2 * i, 2);
          f(uint32_t{x});
        }
        break;
      default:
        for (size_t i = 0; i < size_; ++i) {
          uint32_t x;
          std::memcpy(&x, p + 4 * i, 4);
          f(x);
        }
        break;
    }
  }

  friend bool operator==(const PackedUints& a, const PackedUints& b);
  friend bool operator!=(const PackedUints& a, const PackedUints& b) {
    return !(a == b);
  }

 private:
  void Widen(uint32_t v);
  // Makes bytes_ hold at least n values (geometric growth).
  void Grow(size_t n);
  // bytes_ holding `bytes` (new ones 0), grown into huge-page-backed room.
  void GrowBytes(size_t bytes);
  void Store(size_t i, uint32_t v) {
    uint8_t* p = bytes_.data() + i * width_;
    switch (width_) {
      case 1:
        *p = static_cast<uint8_t>(v);
        break;
      case 2: {
        const uint16_t x = static_cast<uint16_t>(v);
        std::memcpy(p, &x, 2);
        break;
      }
      default:
        std::memcpy(p, &v, 4);
        break;
    }
  }
  // size_ values of width_ bytes; bytes_ may be longer (room to grow).
  python::HugeCopiedVector<uint8_t> bytes_;
  size_t size_ = 0;
  int width_ = 1;
  uint32_t max_ = 0xff;  // the largest value width_ holds
};

class PackedSizes {
 public:
  using const_iterator = PackedIterator<PackedSizes, uint64_t>;
  static constexpr uint16_t kEscape = 0xffff;

  // Copies as PackedAddresses'.
  static PackedSizes From(const std::vector<uint64_t>& v);
  // The sizes at `indexes` / of `runs` (each within size()), in that
  // order.
  PackedSizes Gather(const std::vector<size_t>& indexes) const;
  PackedSizes Gather(const IndexRuns& runs) const;

  size_t size() const { return small_.size(); }
  bool empty() const { return small_.empty(); }
  uint64_t operator[](size_t i) const {
    const uint16_t s = small_[i];
    return s != kEscape ? s : Large(i);
  }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size()); }

  void push_back(uint64_t v) {
    if (v < kEscape) {
      small_.push_back(static_cast<uint16_t>(v));
    } else {
      large_.emplace_back(small_.size(), v);
      small_.push_back(kEscape);
    }
  }
  void reserve(size_t n);
  void clear() {
    small_.clear();
    large_.clear();
  }
  void shrink_to_fit() {
    python::ShrinkHuge(small_);
    large_.shrink_to_fit();
  }
  std::vector<uint64_t> ToVector() const;
  size_t MemoryBytes() const {
    return small_.capacity() * sizeof(uint16_t) +
           large_.capacity() * sizeof(large_[0]);
  }
  // The sum of all sizes.
  uint64_t Total() const;

  friend bool operator==(const PackedSizes& a, const PackedSizes& b) {
    return a.small_ == b.small_ && a.large_ == b.large_;
  }
  friend bool operator!=(const PackedSizes& a, const PackedSizes& b) {
    return !(a == b);
  }

 private:
  uint64_t Large(size_t i) const;
  python::HugeCopiedVector<uint16_t> small_;
  std::vector<std::pair<size_t, uint64_t>> large_;  // (index, size), sorted
};

}  // namespace annex::glue
