// Stable kind series: see kind_tracker.h.
#include "monitor/watchdog/internal/kind_tracker.h"

namespace annex::watchdog::internal {

std::vector<KindFigures> KindTracker::Update(
    const std::vector<KindFigures>& kinds) {
  for (size_t i = 0; i < kinds.size() && i < per_walk_; ++i) {
    if (tracked_.size() >= capacity_) break;
    const std::string& name = kinds[i].kind;
    // A kind literally named like the bucket goes into the bucket.
    if (name == kTrackedOther || index_.count(name) != 0) continue;
    index_.emplace(name, tracked_.size());
    tracked_.push_back(name);
  }
  std::vector<KindFigures> rows(tracked_.size() + 1);
  for (size_t i = 0; i < tracked_.size(); ++i) rows[i].kind = tracked_[i];
  KindFigures& other = rows.back();
  other.kind = kTrackedOther;
  for (const KindFigures& k : kinds) {
    auto it = index_.find(k.kind);
    KindFigures& row = it != index_.end() ? rows[it->second] : other;
    row.count += k.count;
    row.bytes += k.bytes;
  }
  return rows;
}

}  // namespace annex::watchdog::internal
