#include "monitor/heap/lanes.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <system_error>
#include <thread>

namespace annex::heap {

namespace {

// A thread running `fn`, or nothing when none can be started (the caller
// then does the work). Where: any thread.
template <typename Fn>
std::optional<std::thread> TryStart(Fn fn) {
  try {
    return std::thread(std::move(fn));
  } catch (const std::system_error&) {
    return std::nullopt;
  }
}

}  // namespace

Lanes::Lanes(int count, size_t grain)
    : count_(std::clamp(count, 1, kMaxLanes)),
      grain_(std::max<size_t>(grain, 1)) {}

Lanes Lanes::ForMachine() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int n = 1;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) {
    n = CPU_COUNT(&cpus);
  } else {
    n = static_cast<int>(std::thread::hardware_concurrency());
  }
  return Lanes(n >= 2 ? 2 : 1);
}

void Lanes::For(size_t n, absl::FunctionRef<void(size_t, size_t)> body) const {
  For(n, body, [] { return false; });
}

bool Lanes::For(size_t n, absl::FunctionRef<void(size_t, size_t)> body,
                absl::FunctionRef<bool()> stop) const {
  const size_t grain = grain_;
  const size_t slices = (n + grain - 1) / grain;
  if (slices <= 1 || count_ == 1) {
    for (size_t begin = 0; begin < n; begin += grain) {
      if (stop()) return false;
      body(begin, std::min(n, begin + grain));
    }
    return true;
  }
  // Slices are handed out in order; `next` passes `slices` once all are
  // taken, or at once when the caller is told to stop.
  std::atomic<size_t> next{0};
  std::atomic<bool> stopped{false};
  auto take = [&]() -> size_t {
    return next.fetch_add(1, std::memory_order_relaxed);
  };
  auto run_helper = [&] {
    for (size_t s = take(); s < slices; s = take()) {
      body(s * grain, std::min(n, (s + 1) * grain));
    }
  };
  const size_t helpers = std::min(static_cast<size_t>(count_ - 1), slices - 1);
  std::optional<std::thread> threads[kMaxLanes - 1];
  for (size_t h = 0; h < helpers; ++h) threads[h] = TryStart(run_helper);
  while (true) {
    if (stop()) {
      stopped.store(true, std::memory_order_relaxed);
      next.store(slices, std::memory_order_relaxed);
      break;
    }
    const size_t s = take();
    if (s >= slices) break;
    body(s * grain, std::min(n, (s + 1) * grain));
  }
  for (size_t h = 0; h < helpers; ++h) {
    if (threads[h].has_value()) threads[h]->join();
  }
  return !stopped.load(std::memory_order_relaxed);
}

void Lanes::Beside(absl::FunctionRef<void()> helper_side,
                   absl::FunctionRef<void()> caller_side) const {
  std::optional<std::thread> helper;
  if (count_ > 1) helper = TryStart([&] { helper_side(); });
  caller_side();
  if (helper.has_value()) {
    helper->join();
  } else {
    helper_side();
  }
}

}  // namespace annex::heap
