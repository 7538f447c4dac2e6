#include "monitor/heap/lanes.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

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

// The first whitespace-separated words of a small file, up to two; empty
// when it cannot be read. Where: any thread.
std::vector<std::string> FirstWords(const char* path) {
  std::vector<std::string> words;
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return words;
  char a[32] = {}, b[32] = {};
  const int got = std::fscanf(f, "%31s %31s", a, b);
  std::fclose(f);
  if (got >= 1) words.emplace_back(a);
  if (got >= 2) words.emplace_back(b);
  return words;
}

// A positive whole number, else 0.
long long Positive(const std::string& word) {
  char* end = nullptr;
  const long long v = std::strtoll(word.c_str(), &end, 10);
  return end != word.c_str() && *end == '\0' && v > 0 ? v : 0;
}

// CPUs' worth of time this process's cgroup may use per period when a
// CPU quota limits it (cgroup v2's cpu.max "quota period", else v1's
// cpu.cfs_quota_us and cpu.cfs_period_us), else nullopt ("max", -1, or
// no such file). A container limited to one CPU's time gains nothing
// from a second lane, whatever its affinity says. Where: any thread.
std::optional<double> CgroupCpus() {
  long long quota = 0, period = 0;
  const std::vector<std::string> v2 = FirstWords("/sys/fs/cgroup/cpu.max");
  if (v2.size() == 2) {
    quota = Positive(v2[0]);
    period = Positive(v2[1]);
  } else {
    const std::vector<std::string> q =
        FirstWords("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    const std::vector<std::string> p =
        FirstWords("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    if (!q.empty() && !p.empty()) {
      quota = Positive(q[0]);
      period = Positive(p[0]);
    }
  }
  if (quota == 0 || period == 0) return std::nullopt;
  return static_cast<double>(quota) / static_cast<double>(period);
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
  if (const std::optional<double> quota = CgroupCpus();
      quota.has_value() && *quota < 2) {
    n = 1;
  }
  return Lanes(n >= 2 ? 2 : 1);
}

void Lanes::For(size_t n, absl::FunctionRef<void(size_t, size_t)> body) const {
  For(n, body, [] { return false; });
}

bool Lanes::For(size_t n, absl::FunctionRef<void(size_t, size_t)> body,
                absl::FunctionRef<bool()> stop) const {
  const size_t grain = grain_;
  const size_t slices = n / grain + (n % grain != 0 ? 1 : 0);
  if (slices <= 1 || count_ == 1) {
    for (size_t s = 0; s < slices; ++s) {
      if (stop()) return false;
      body(s * grain, std::min(n, (s + 1) * grain));
    }
    return true;
  }
  // Slices are handed out in order; `next` passes `slices` once all are
  // taken, or at once when the caller is told to stop or a slice throws.
  std::atomic<size_t> next{0};
  std::atomic<bool> stopped{false};
  auto take = [&]() -> size_t {
    return next.fetch_add(1, std::memory_order_relaxed);
  };
  auto end_all = [&] { next.store(slices, std::memory_order_relaxed); };
  // What a helper's slice threw, rethrown on the caller after the joins
  // (a helper that let it escape would end the process).
  std::exception_ptr helper_error[kMaxLanes - 1];
  const size_t helpers = std::min(static_cast<size_t>(count_ - 1), slices - 1);
  std::optional<std::thread> threads[kMaxLanes - 1];
  for (size_t h = 0; h < helpers; ++h) {
    threads[h] = TryStart([&, h] {
      try {
        for (size_t s = take(); s < slices; s = take()) {
          body(s * grain, std::min(n, (s + 1) * grain));
        }
      } catch (...) {
        helper_error[h] = std::current_exception();
        end_all();
      }
    });
  }
  std::exception_ptr caller_error;
  try {
    while (true) {
      if (stop()) {
        stopped.store(true, std::memory_order_relaxed);
        end_all();
        break;
      }
      const size_t s = take();
      if (s >= slices) break;
      body(s * grain, std::min(n, (s + 1) * grain));
    }
  } catch (...) {
    caller_error = std::current_exception();
    end_all();
  }
  for (size_t h = 0; h < helpers; ++h) {
    if (threads[h].has_value()) threads[h]->join();
  }
  if (caller_error) std::rethrow_exception(caller_error);
  for (size_t h = 0; h < helpers; ++h) {
    if (helper_error[h]) std::rethrow_exception(helper_error[h]);
  }
  return !stopped.load(std::memory_order_relaxed);
}

void Lanes::Beside(absl::FunctionRef<void()> helper_side,
                   absl::FunctionRef<void()> caller_side) const {
  std::exception_ptr helper_error;
  std::optional<std::thread> helper;
  if (count_ > 1) {
    helper = TryStart([&] {
      try {
        helper_side();
      } catch (...) {
        helper_error = std::current_exception();
      }
    });
  }
  std::exception_ptr caller_error;
  try {
    caller_side();
  } catch (...) {
    caller_error = std::current_exception();
  }
  if (helper.has_value()) {
    helper->join();
  } else if (!caller_error) {
    helper_side();
  }
  if (caller_error) std::rethrow_exception(caller_error);
  if (helper_error) std::rethrow_exception(helper_error);
}

}  // namespace annex::heap
