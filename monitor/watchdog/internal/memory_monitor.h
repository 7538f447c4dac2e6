// Memory thresholds with hysteresis and a growth trend over a sliding
// window, as pure logic fed with RSS samples by the watchdog thread.
//
//   MemoryMonitor monitor({.limit_bytes = 1 << 30});
//   for (MemoryAlarm alarm : monitor.Update(now_ns, rss)) Report(alarm);
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace annex::watchdog::internal {

enum class MemoryAlarm { kLimit, kGrowth };

// Not thread-safe: owned by the watchdog thread.
class MemoryMonitor {
 public:
  struct Config {
    int64_t limit_bytes = 0;         // 0: no limit
    int64_t clear_bytes = 0;         // re-arm below; 0: 90% of the limit
    int64_t growth_limit_bytes = 0;  // 0: no growth alarm
    int64_t growth_window_ns = 0;
  };

  explicit MemoryMonitor(const Config& config);

  // Feeds one sample; returns the alarms that fire now. The limit alarm fires
  // when `bytes` reaches the limit and re-arms below the clear level; the
  // growth alarm fires when `bytes` exceeds the window's minimum by the
  // growth limit and re-arms when the growth falls below half of it.
  std::vector<MemoryAlarm> Update(int64_t now_ns, int64_t bytes);

  // Growth over the window as of the last Update.
  int64_t growth_bytes() const { return growth_; }

 private:
  Config config_;
  std::deque<std::pair<int64_t, int64_t>> window_;  // (time, bytes), min-queue
  bool limit_armed_ = true;
  bool growth_armed_ = true;
  int64_t growth_ = 0;
};

// Resident set size of this process from /proc/self/statm opened as `fd`
// (pread at offset 0), in bytes, or -1. Where: any thread, no Python.
int64_t ReadRssBytes(int statm_fd);

}  // namespace annex::watchdog::internal
