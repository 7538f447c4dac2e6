// The kinds whose series the metrics export, kept stable from walk to walk
// so that series do not appear and disappear as the largest kinds change
// (docs/watchdog.md, Metrics):
//
//   - after each walk, each of its `per_walk` largest kinds (by bytes)
//     becomes tracked while fewer than `capacity` kinds are;
//   - a tracked kind stays tracked for the life of the tracker, reported
//     with zeros when a walk has none of it;
//   - every other kind is summed into one row, kTrackedOther ("other"),
//     so the tracked rows and "other" always add up to the walk's totals.
//
//   KindTracker tracker(10, 20);
//   std::vector<KindFigures> rows = tracker.Update(walk_kinds_largest_first);
//
// Plain data, no Python. Where: any thread, one at a time.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "monitor/watchdog/watchdog.h"

namespace annex::watchdog::internal {

class KindTracker {
 public:
  KindTracker(size_t per_walk, size_t capacity)
      : per_walk_(per_walk), capacity_(capacity) {}

  // `kinds`: every kind of one walk, largest first (each name once).
  // Returns the tracked kinds in the order they became tracked, then
  // kTrackedOther (always present, possibly zero).
  std::vector<KindFigures> Update(const std::vector<KindFigures>& kinds);

  // The tracked kind names, in the order they became tracked.
  const std::vector<std::string>& tracked() const { return tracked_; }

 private:
  const size_t per_walk_;
  const size_t capacity_;
  std::vector<std::string> tracked_;
  std::unordered_map<std::string, size_t> index_;  // name -> tracked_ index
};

}  // namespace annex::watchdog::internal
