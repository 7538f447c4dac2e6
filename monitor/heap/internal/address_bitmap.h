// A visited set for object addresses: one bit per 8 bytes of address space,
// in 64 KiB chunks (4 MiB of address space each) allocated on first use
// under a two-level directory. Every PyObject is 8-byte aligned and at least
// 16 bytes long, so distinct objects always get distinct bits and an address
// can be rebuilt exactly from its bit.
//
//   AddressBitmap seen;
//   if (seen.TestAndSet(addr)) { /* already there */ }
//   seen.ForEach([](uintptr_t a) { ... });   // ascending address order
//
// Not thread-safe; plain memory, never touches Python.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "monitor/heap/internal/popcount.h"

namespace annex::heap::internal {

class AddressBitmap {
 public:
  AddressBitmap() : top_(new std::unique_ptr<Chunk*[]>[kTopSize]) {}
  AddressBitmap(const AddressBitmap&) = delete;
  AddressBitmap& operator=(const AddressBitmap&) = delete;
  ~AddressBitmap() {
    for (size_t t = 0; t < kTopSize; ++t) {
      if (!top_[t]) continue;
      for (size_t m = 0; m < kMidSize; ++m) delete top_[t][m];
    }
  }

  // Sets the bit of `addr`; returns whether it was set before.
  bool TestAndSet(uintptr_t addr) {
    const uintptr_t top = addr >> kTopShift;
    if (top >= kTopSize || (addr & 7) != 0) {
      return !overflow_.insert(addr).second;
    }
    std::unique_ptr<Chunk*[]>& mid_table = top_[top];
    if (!mid_table) {
      mid_table.reset(new Chunk*[kMidSize]());
    }
    Chunk*& chunk = mid_table[(addr >> kMidShift) & (kMidSize - 1)];
    if (chunk == nullptr) {
      chunk = new Chunk();
      chunk_count_++;
    }
    const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
    uint64_t& word = chunk->words[bit >> 6];
    const uint64_t mask = uint64_t{1} << (bit & 63);
    const bool was = (word & mask) != 0;
    word |= mask;
    return was;
  }

  // Sets the bits of the strictly ascending addresses [first, last) with
  // one directory lookup per 4 MiB chunk instead of per address. Returns
  // false at the first address that does not ascend (those before it are
  // set).
  bool SetAscending(const uintptr_t* first, const uintptr_t* last) {
    uintptr_t previous = 0;
    uintptr_t chunk_key = ~uintptr_t{0};
    Chunk* chunk = nullptr;
    for (const uintptr_t* p = first; p != last; ++p) {
      const uintptr_t addr = *p;
      if (p != first && addr <= previous) return false;
      previous = addr;
      if ((addr >> kTopShift) >= kTopSize || (addr & 7) != 0) {
        TestAndSet(addr);
        continue;
      }
      if ((addr >> kMidShift) != chunk_key) {
        TestAndSet(addr);  // allocates the chunk when needed
        chunk_key = addr >> kMidShift;
        chunk = top_[addr >> kTopShift][chunk_key & (kMidSize - 1)];
        continue;
      }
      const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
      chunk->words[bit >> 6] |= uint64_t{1} << (bit & 63);
    }
    return true;
  }

  // Clears the bit of `addr` (a no-op when it is not set).
  void Clear(uintptr_t addr) {
    const uintptr_t top = addr >> kTopShift;
    if (top >= kTopSize || (addr & 7) != 0) {
      overflow_.erase(addr);
      return;
    }
    if (!top_[top]) return;
    Chunk* chunk = top_[top][(addr >> kMidShift) & (kMidSize - 1)];
    if (chunk == nullptr) return;
    const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
    chunk->words[bit >> 6] &= ~(uint64_t{1} << (bit & 63));
  }

  bool Test(uintptr_t addr) const {
    const uintptr_t top = addr >> kTopShift;
    if (top >= kTopSize || (addr & 7) != 0) return overflow_.contains(addr);
    const std::unique_ptr<Chunk*[]>& mid_table = top_[top];
    if (!mid_table) return false;
    const Chunk* chunk = mid_table[(addr >> kMidShift) & (kMidSize - 1)];
    if (chunk == nullptr) return false;
    const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
    return (chunk->words[bit >> 6] >> (bit & 63)) & 1;
  }

  // Calls f(addr) for every set address in ascending order.
  template <typename F>
  void ForEach(F&& f) const {
    std::vector<uintptr_t> odd;
    if (!overflow_.empty()) {
      odd.assign(overflow_.begin(), overflow_.end());
      std::sort(odd.begin(), odd.end());
    }
    size_t next_odd = 0;
    for (uintptr_t t = 0; t < kTopSize; ++t) {
      if (!top_[t]) continue;
      for (uintptr_t m = 0; m < kMidSize; ++m) {
        const Chunk* chunk = top_[t][m];
        if (chunk == nullptr) continue;
        const uintptr_t base = (t << kTopShift) | (m << kMidShift);
        for (size_t w = 0; w < kWordsPerChunk; ++w) {
          uint64_t bits = chunk->words[w];
          while (bits != 0) {
            const int b = __builtin_ctzll(bits);
            bits &= bits - 1;
            const uintptr_t addr = base | ((w * 64 + b) << kGranuleShift);
            while (next_odd < odd.size() && odd[next_odd] < addr) {
              f(odd[next_odd++]);
            }
            f(addr);
          }
        }
      }
    }
    while (next_odd < odd.size()) f(odd[next_odd++]);
  }

  // Precomputes ranks for Rank(); call after the last TestAndSet. Only
  // possible without overflow addresses (returns false then).
  bool BuildRank() {
    if (!overflow_.empty()) return false;
    uint64_t rank = 0;
    for (uintptr_t t = 0; t < kTopSize; ++t) {
      if (!top_[t]) continue;
      for (uintptr_t m = 0; m < kMidSize; ++m) {
        Chunk* chunk = top_[t][m];
        if (chunk == nullptr) continue;
        chunk->base_rank = rank;
        if (!chunk->word_rank) {
          chunk->word_rank.reset(new uint32_t[kWordsPerChunk]);
          ranked_chunks_++;
        }
        uint32_t in_chunk = 0;
        for (size_t w = 0; w < kWordsPerChunk; ++w) {
          chunk->word_rank[w] = in_chunk;
          in_chunk += static_cast<uint32_t>(PopCount64(chunk->words[w]));
        }
        rank += in_chunk;
      }
    }
    return true;
  }

  // The position of `addr` in ascending order among the set addresses.
  // Requires BuildRank() and that `addr` is set.
  uint64_t Rank(uintptr_t addr) const {
    const Chunk* chunk =
        top_[addr >> kTopShift][(addr >> kMidShift) & (kMidSize - 1)];
    const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
    const uint64_t below =
        chunk->words[bit >> 6] & ((uint64_t{1} << (bit & 63)) - 1);
    return chunk->base_rank + chunk->word_rank[bit >> 6] +
           static_cast<uint64_t>(PopCount64(below));
  }

  // Rank(addr) when `addr` is set, else -1. Requires BuildRank().
  int64_t RankIfSet(uintptr_t addr) const {
    const uintptr_t top = addr >> kTopShift;
    if (top >= kTopSize || (addr & 7) != 0) return -1;  // ranked: none aside
    const std::unique_ptr<Chunk*[]>& mid_table = top_[top];
    if (!mid_table) return -1;
    const Chunk* chunk = mid_table[(addr >> kMidShift) & (kMidSize - 1)];
    if (chunk == nullptr) return -1;
    const uintptr_t bit = (addr >> kGranuleShift) & (kBitsPerChunk - 1);
    const uint64_t word = chunk->words[bit >> 6];
    const uint64_t mask = uint64_t{1} << (bit & 63);
    if ((word & mask) == 0) return -1;
    return static_cast<int64_t>(
        chunk->base_rank + chunk->word_rank[bit >> 6] +
        static_cast<uint64_t>(PopCount64(word & (mask - 1))));
  }

  // Asks the CPU to fetch what Rank(addr) and RankIfSet(addr) will read,
  // for a lookup some addresses later in a stream. Requires BuildRank().
  void PrefetchRank(uintptr_t addr) const {
    const uintptr_t top = addr >> kTopShift;
    if (top >= kTopSize) return;
    const std::unique_ptr<Chunk*[]>& mid_table = top_[top];
    if (!mid_table) return;
    const Chunk* chunk = mid_table[(addr >> kMidShift) & (kMidSize - 1)];
    if (chunk == nullptr) return;
    const uintptr_t w = ((addr >> kGranuleShift) & (kBitsPerChunk - 1)) >> 6;
    __builtin_prefetch(&chunk->words[w]);
    __builtin_prefetch(&chunk->word_rank[w]);
  }

  // Bytes held by the bitmap itself.
  size_t MemoryBytes() const {
    size_t mids = 0;
    for (size_t t = 0; t < kTopSize; ++t) mids += top_[t] ? 1 : 0;
    return kTopSize * sizeof(void*) + mids * kMidSize * sizeof(void*) +
           chunk_count_ * sizeof(Chunk) + ranked_chunks_ * kWordsPerChunk * 4 +
           overflow_.size() * 16;
  }

 private:
  static constexpr int kGranuleShift = 3;  // 8 bytes per bit
  static constexpr int kMidShift = 22;     // 4 MiB per chunk
  static constexpr int kTopShift = 36;     // 64 GiB per mid table
  static constexpr uintptr_t kBitsPerChunk = uintptr_t{1}
                                             << (kMidShift - kGranuleShift);
  static constexpr size_t kWordsPerChunk = kBitsPerChunk / 64;
  static constexpr uintptr_t kMidSize = uintptr_t{1} << (kTopShift - kMidShift);
  static constexpr uintptr_t kTopSize = 4096;  // 48-bit user addresses

  struct Chunk {
    uint64_t words[kWordsPerChunk] = {};
    uint64_t base_rank = 0;                 // set by BuildRank()
    std::unique_ptr<uint32_t[]> word_rank;  // set by BuildRank()
  };

  std::unique_ptr<std::unique_ptr<Chunk*[]>[]> top_;
  size_t chunk_count_ = 0;
  size_t ranked_chunks_ = 0;  // chunks with a word_rank array
  // Addresses above 2^48 or not 8-byte aligned (never PyObjects in
  // practice; kept correct anyway).
  absl::flat_hash_set<uintptr_t> overflow_;
};

}  // namespace annex::heap::internal
