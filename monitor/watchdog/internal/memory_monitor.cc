// Memory thresholds and growth trend: see memory_monitor.h.
#include "monitor/watchdog/internal/memory_monitor.h"

#include <unistd.h>

namespace annex::watchdog::internal {

MemoryMonitor::MemoryMonitor(const Config& config) : config_(config) {
  if (config_.clear_bytes <= 0) {
    config_.clear_bytes = config_.limit_bytes / 10 * 9;
  }
}

std::vector<MemoryAlarm> MemoryMonitor::Update(int64_t now_ns, int64_t bytes) {
  std::vector<MemoryAlarm> alarms;
  if (config_.limit_bytes > 0) {
    if (limit_armed_ && bytes >= config_.limit_bytes) {
      limit_armed_ = false;
      alarms.push_back(MemoryAlarm::kLimit);
    } else if (!limit_armed_ && bytes < config_.clear_bytes) {
      limit_armed_ = true;
    }
  }
  if (config_.growth_limit_bytes > 0) {
    // Monotonic queue: the front is the minimum of the window.
    while (!window_.empty() && window_.back().second >= bytes)
      window_.pop_back();
    window_.emplace_back(now_ns, bytes);
    while (window_.front().first < now_ns - config_.growth_window_ns) {
      window_.pop_front();
    }
    growth_ = bytes - window_.front().second;
    if (growth_armed_ && growth_ >= config_.growth_limit_bytes) {
      growth_armed_ = false;
      alarms.push_back(MemoryAlarm::kGrowth);
    } else if (!growth_armed_ && growth_ < config_.growth_limit_bytes / 2) {
      growth_armed_ = true;
    }
  }
  return alarms;
}

int64_t ReadRssBytes(int statm_fd) {
  char buf[128];
  ssize_t n = pread(statm_fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // "size resident shared text lib data dt", in pages.
  const char* p = buf;
  while (*p != '\0' && *p != ' ') ++p;
  if (*p != ' ') return -1;
  ++p;
  int64_t pages = 0;
  bool any = false;
  for (; *p >= '0' && *p <= '9'; ++p) {
    pages = pages * 10 + (*p - '0');
    any = true;
  }
  if (!any) return -1;
  return pages * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace annex::watchdog::internal
