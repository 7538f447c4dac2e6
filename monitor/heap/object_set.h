// ObjectSet: an immutable, compact set of object identities (addresses), in
// the spirit of Heapy's nodeset. Addresses are kept sorted and stored as
// variable-length deltas in blocks of 64, about 1.2 to 2 bytes per object for
// a real heap, with set algebra by merging.
//
//   ObjectSet a = ...;                 // e.g. HeapEngine::Heap()->objects
//   ObjectSet fresh = b - a;           // what appeared since `a`
//   for (uintptr_t addr : fresh) ...   // ascending address order
//
// Rule 10 (docs/design.md): a set holds identities only. It keeps no object
// alive, and an address from it may be dereferenced only while the GIL has been
// held continuously since the walk that produced it, or after a fresh walk
// has confirmed the address is still reachable (e.g. `fresh & new_heap`);
// even then the address may have been reused by a different object.
// Plain C++ data: any thread; const methods may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

namespace annex::heap {

class ObjectSet {
 public:
  // Collects addresses in strictly ascending order.
  class Builder {
   public:
    // Appends `addr`, which must be greater than every address added before
    // (smaller or equal ones are ignored).
    void Add(uintptr_t addr);
    ObjectSet Build() &&;

   private:
    void SwitchToRawDeltas();
    int shift_ = 3;
    std::vector<uint8_t> bytes_;
    std::vector<uintptr_t> block_first_;
    std::vector<uint32_t> block_offset_;
    uintptr_t last_ = 0;
    size_t size_ = 0;
  };

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = uintptr_t;
    using difference_type = std::ptrdiff_t;
    using pointer = const uintptr_t*;
    using reference = uintptr_t;

    uintptr_t operator*() const { return value_; }
    const_iterator& operator++();
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const const_iterator& o) const {
      return index_ == o.index_;
    }
    bool operator!=(const const_iterator& o) const {
      return index_ != o.index_;
    }

   private:
    friend class ObjectSet;
    const_iterator(const ObjectSet* set, size_t index);
    void Load();
    const ObjectSet* set_ = nullptr;
    size_t index_ = 0;            // position in the set
    const uint8_t* p_ = nullptr;  // next delta byte
    uintptr_t value_ = 0;
  };

  ObjectSet() = default;
  // From any addresses (duplicates removed).
  static ObjectSet FromUnsorted(std::vector<uintptr_t> addresses);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool contains(uintptr_t addr) const;
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }
  std::vector<uintptr_t> ToVector() const;
  // Bytes of memory the set occupies (excluding sizeof(ObjectSet)).
  size_t MemoryBytes() const;

  bool IsSubsetOf(const ObjectSet& other) const;
  friend ObjectSet operator|(const ObjectSet& a, const ObjectSet& b);
  friend ObjectSet operator&(const ObjectSet& a, const ObjectSet& b);
  friend ObjectSet operator-(const ObjectSet& a, const ObjectSet& b);
  friend ObjectSet operator^(const ObjectSet& a, const ObjectSet& b);
  friend bool operator==(const ObjectSet& a, const ObjectSet& b);
  friend bool operator!=(const ObjectSet& a, const ObjectSet& b) {
    return !(a == b);
  }
  friend bool operator<=(const ObjectSet& a, const ObjectSet& b) {
    return a.IsSubsetOf(b);
  }

 private:
  static constexpr size_t kBlock = 64;
  // Deltas within a block, as LEB128 varints of (delta >> 3) when every
  // address is 8-byte aligned (always true for objects), else raw deltas.
  std::vector<uint8_t> bytes_;
  std::vector<uintptr_t> block_first_;  // first address of each block
  std::vector<uint32_t> block_offset_;  // its deltas start in bytes_
  size_t size_ = 0;
  int shift_ = 3;
  friend class Builder;
};

}  // namespace annex::heap
