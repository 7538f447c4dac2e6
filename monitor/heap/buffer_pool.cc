// The pool's trimming and accounting.
#include "monitor/heap/buffer_pool.h"

namespace annex::heap {

void BufferPool::ShrinkLocked(size_t bytes) {
  while (stats_.kept_bytes > bytes) {
    // The smallest kept vector of any type leaves first: the big ones are
    // the ones whose faults cost.
    size_t smallest = SIZE_MAX;
    std::function<void()> drop;
    std::apply(
        [&](auto&... list) {
          (
              [&](auto& l) {
                for (size_t i = 0; i < l.kept.size(); ++i) {
                  const size_t b = l.kept[i].capacity() *
                                   sizeof(typename std::decay_t<
                                          decltype(l.kept[i])>::value_type);
                  if (b < smallest) {
                    smallest = b;
                    drop = [&l, i] {
                      l.kept.erase(l.kept.begin() + static_cast<ptrdiff_t>(i));
                    };
                  }
                }
              }(list),
              ...);
        },
        lists_);
    if (!drop) break;
    drop();
    stats_.kept_bytes -= smallest;
    --stats_.kept_vectors;
  }
}

void BufferPool::Notify() {
  if (!on_change_) return;
  size_t bytes;
  {
    absl::MutexLock lock(&mu_);
    bytes = stats_.kept_bytes + held_bytes_;
  }
  on_change_(bytes);
}

void BufferPool::SetHeld(size_t bytes, std::function<void()> release) {
  // The one replaced ends after the locks are gone: what it holds may give
  // vectors back to the pool as it ends.
  std::function<void()> replaced;
  absl::MutexLock notify(&notify_mu_);
  {
    absl::MutexLock lock(&mu_);
    replaced = std::move(held_release_);
    held_release_ = std::move(release);
    held_bytes_ = bytes;
  }
  Notify();
}

size_t BufferPool::held_bytes() const {
  absl::MutexLock lock(&mu_);
  return held_bytes_;
}

void BufferPool::Trim() {
  std::function<void()> release;
  {
    absl::MutexLock lock(&mu_);
    release = std::move(held_release_);
    held_release_ = nullptr;
    held_bytes_ = 0;
  }
  // Outside the locks: the held memory may come back to the pool now, to
  // be freed with the rest below.
  if (release) release();
  release = nullptr;
  absl::MutexLock notify(&notify_mu_);
  {
    absl::MutexLock lock(&mu_);
    ShrinkLocked(0);
  }
  Notify();
}

void BufferPool::set_limit(size_t bytes) {
  absl::MutexLock notify(&notify_mu_);
  {
    absl::MutexLock lock(&mu_);
    limit_ = bytes;
    ShrinkLocked(bytes);
  }
  Notify();
}

size_t BufferPool::limit() const {
  absl::MutexLock lock(&mu_);
  return limit_;
}

BufferPool::Stats BufferPool::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

size_t BufferPool::kept_bytes() const {
  absl::MutexLock lock(&mu_);
  return stats_.kept_bytes;
}

}  // namespace annex::heap
