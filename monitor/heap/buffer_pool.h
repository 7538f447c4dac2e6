// BufferPool: the big vectors of heap questions (the walk's records, the
// graph's arrays, reverse indexes, dominator arrays), kept between
// questions with their memory instead of being freed and faulted in fresh
// by the next question (issue 14: a fresh 4 KiB page cost ~6.8 ms per MB
// under load on this kind of VM, a huge page 0.2 ms per MB; a question
// at 1M objects writes ~100 MB of such vectors).
//
//   std::shared_ptr<BufferPool> pool = ...;     // the engine's
//   std::vector<uint32_t> v = pool->Take<uint32_t>(n);  // empty, room for n
//   ... v.push_back / v.assign ...
//   pool->Give(std::move(v));                   // kept for the next Take
//
// Only vectors of at least min_bytes() are kept: 32 MiB by default, glibc's
// largest mmap threshold. Smaller ones come back from malloc's own free
// memory without faults once the threshold has risen past them (glibc
// raises it to the size of a freed mapping), and a pool that kept them
// would only take that memory from the annex's other allocations (at 1M
// objects on 3.11, keeping everything from 256 KiB up showed no gain;
// docs/heap-engine.md). Larger ones malloc maps and unmaps on every
// question.
// What is kept stays within
// limit() bytes, the smallest vectors leaving first. Take() hands out the
// kept vector of the smallest capacity that fits, else a fresh one with an
// eighth more room than asked (so a heap that grows a little still fits
// next time), its memory backed by huge pages where the kernel offers them
// (python/huge_pages.h). Kept memory has been written before: it faults no
// more, and callers see an empty vector as always (they assign or push what
// they need).
//
// Thread-safe (a mutex): graphs made on the annex thread may end on
// another thread (retainers are built off the GIL). Plain memory, never
// touches Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "monitor/python/huge_pages.h"

namespace annex::heap {

class BufferPool {
 public:
  // Vectors smaller than min_bytes() are neither kept nor counted; these
  // bound what set_min_bytes() accepts.
  static constexpr size_t kMinBytes = size_t{256} << 10;
  static constexpr size_t kDefaultMinBytes = size_t{32} << 20;
  // The default limit: enough for the questions of ~2.5M objects.
  static constexpr size_t kDefaultLimit = size_t{256} << 20;

  struct Stats {
    // Take()s of kMinBytes or more that allocated fresh memory.
    uint64_t fresh = 0;
    uint64_t fresh_bytes = 0;
    // Take()s served from kept vectors.
    uint64_t reused = 0;
    uint64_t reused_bytes = 0;
    // Bytes kept now, and how many vectors.
    size_t kept_bytes = 0;
    size_t kept_vectors = 0;
  };

  explicit BufferPool(size_t limit = kDefaultLimit) : limit_(limit) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An empty vector with room for at least `n` elements. T is one of the
  // element types below (Lists). Where: any thread.
  template <typename T>
  std::vector<T> Take(size_t n);

  // Keeps `v`'s memory for a later Take (cleared first), within limit();
  // frees it otherwise. Where: any thread.
  template <typename T>
  void Give(std::vector<T>&& v);

  // Frees everything kept. Where: any thread.
  void Trim();

  // The most bytes kept (0: keep nothing); lowering it frees the smallest
  // kept vectors until what is kept fits. Where: any thread.
  void set_limit(size_t bytes);
  size_t limit() const;

  Stats stats() const;
  size_t kept_bytes() const;

  // The smallest vector kept (at least kMinBytes). Where: set before the
  // pool is shared (tests lower it to see reuse on small heaps).
  void set_min_bytes(size_t bytes) {
    min_bytes_ = bytes < kMinBytes ? kMinBytes : bytes;
  }
  size_t min_bytes() const { return min_bytes_; }

  // Memory the pool's owner keeps in use between questions on the pool's
  // account (the engine's kept graph, HeapEngine::SharedGraph): `bytes` is
  // added to what on_change reports (kept_bytes() and stats() stay the
  // pool's own), and Trim() gives it up by calling `release` first,
  // outside the pool's locks (release may give vectors back to the pool,
  // which Trim then frees, and may call SetHeld). Replaces what was set
  // before; 0 and null: nothing held. Where: any thread.
  void SetHeld(size_t bytes, std::function<void()> release);
  size_t held_bytes() const;

  // Called with the bytes kept after each change of them (a Give that
  // kept, a Take that reused, Trim, set_limit, SetHeld; held bytes
  // included), outside the pool's lock
  // and one call at a time, on the thread that changed them; it must not
  // call back into the pool. Null: none. Where: any thread.
  void set_on_change(std::function<void(size_t kept_bytes)> on_change) {
    absl::MutexLock notify(&notify_mu_);
    on_change_ = std::move(on_change);
  }

 private:
  template <typename T>
  struct List {
    std::vector<std::vector<T>> kept;
  };
  // The element types the heap's big vectors use.
  using Lists = std::tuple<List<uint8_t>, List<uint32_t>, List<uint64_t>,
                           List<std::pair<uint32_t, uint32_t>>>;

  // Frees the smallest kept vectors until at most `bytes` are kept.
  void ShrinkLocked(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls on_change_ with the bytes kept now.
  void Notify() ABSL_EXCLUSIVE_LOCKS_REQUIRED(notify_mu_);

  size_t min_bytes_ = kDefaultMinBytes;
  absl::Mutex notify_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // orders on_change_ calls
  mutable absl::Mutex mu_;
  size_t limit_ ABSL_GUARDED_BY(mu_);
  Lists lists_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::function<void(size_t)> on_change_ ABSL_GUARDED_BY(notify_mu_);
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> held_release_ ABSL_GUARDED_BY(mu_);
};

// An empty vector with room for `n`: from `pool`, or a fresh one (backed
// by huge pages when big) when `pool` is null. Where: any thread.
template <typename T>
std::vector<T> TakeFrom(BufferPool* pool, size_t n) {
  if (pool != nullptr) return pool->Take<T>(n);
  std::vector<T> out;
  python::ReserveHuge(out, n);
  return out;
}

// `n` copies of `value`, in memory from `pool` (or fresh when null).
template <typename T>
std::vector<T> FilledFrom(BufferPool* pool, size_t n, const T& value) {
  std::vector<T> out = TakeFrom<T>(pool, n);
  out.assign(n, value);
  return out;
}

// Gives `v`'s memory to `pool` (when not null) and leaves `v` empty.
template <typename T>
void GiveTo(BufferPool* pool, std::vector<T>& v) {
  if (pool != nullptr) pool->Give(std::move(v));
  std::vector<T>().swap(v);
}

template <typename T>
std::vector<T> BufferPool::Take(size_t n) {
  std::vector<T> out;
  if (n * sizeof(T) < min_bytes_) {
    python::ReserveHuge(out,
                        n);  // not kept, but backed by huge pages as before
    return out;
  }
  {
    absl::MutexLock notify(&notify_mu_);
    bool changed = false;
    {
      absl::MutexLock lock(&mu_);
      auto& kept = std::get<List<T>>(lists_).kept;
      size_t best = kept.size();
      for (size_t i = 0; i < kept.size(); ++i) {
        if (kept[i].capacity() >= n &&
            (best == kept.size() ||
             kept[i].capacity() < kept[best].capacity())) {
          best = i;
        }
      }
      if (best != kept.size()) {
        out = std::move(kept[best]);
        kept.erase(kept.begin() + static_cast<ptrdiff_t>(best));
        const size_t bytes = out.capacity() * sizeof(T);
        stats_.kept_bytes -= bytes;
        --stats_.kept_vectors;
        ++stats_.reused;
        stats_.reused_bytes += bytes;
        changed = true;
      } else {
        ++stats_.fresh;
        stats_.fresh_bytes += (n + n / 8) * sizeof(T);
        // The largest kept vector of the type is too small for this need:
        // the fresh one takes its place (a heap that grew past the slack,
        // or a first walk's records grown by doubling).
        size_t largest = kept.size();
        for (size_t i = 0; i < kept.size(); ++i) {
          if (largest == kept.size() ||
              kept[i].capacity() > kept[largest].capacity()) {
            largest = i;
          }
        }
        if (largest != kept.size()) {
          stats_.kept_bytes -= kept[largest].capacity() * sizeof(T);
          --stats_.kept_vectors;
          kept.erase(kept.begin() + static_cast<ptrdiff_t>(largest));
          changed = true;
        }
      }
    }
    if (changed) Notify();
    if (out.capacity() >= n) return out;
  }
  python::ReserveHuge(out, n + n / 8);
  return out;
}

template <typename T>
void BufferPool::Give(std::vector<T>&& v) {
  const size_t bytes = v.capacity() * sizeof(T);
  if (bytes < min_bytes_) return;
  absl::MutexLock notify(&notify_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (bytes > limit_) return;  // `v` is freed by its owner
    ShrinkLocked(limit_ - bytes);
    v.clear();
    std::get<List<T>>(lists_).kept.push_back(std::move(v));
    stats_.kept_bytes += bytes;
    ++stats_.kept_vectors;
  }
  Notify();
}

}  // namespace annex::heap
