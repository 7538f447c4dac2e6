// The annex's memory budget for kept sets (see memory_budget.h).
#include "glue/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace annex::glue {
namespace {

size_t PhysicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<size_t>(pages) * static_cast<size_t>(page);
}

size_t DefaultLimit(size_t cap, size_t fraction) {
  const size_t physical = PhysicalMemory();
  return physical == 0 ? cap : std::min(cap, physical / fraction);
}

}  // namespace

std::string FormatBytes(size_t bytes) {
  if (bytes >= (size_t{1} << 30)) {
    return absl::StrFormat("%.1f GiB", bytes / double(size_t{1} << 30));
  }
  if (bytes >= (size_t{1} << 20)) {
    return absl::StrFormat("%.1f MiB", bytes / double(size_t{1} << 20));
  }
  if (bytes >= 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrCat(bytes, " bytes");
}

absl::StatusOr<std::unique_ptr<MemoryBudget>> MemoryBudget::Create(Session&) {
  return std::make_unique<MemoryBudget>();
}

MemoryBudget::MemoryBudget() = default;

void MemoryBudget::SetLimits(const MemoryLimits& limits) {
  absl::MutexLock lock(&mu_);
  limits_ = limits;
}

MemoryLimits MemoryBudget::limits() const {
  absl::MutexLock lock(&mu_);
  return MemoryLimits{PerHpLimitLocked(), TotalLimitLocked()};
}

size_t MemoryBudget::PerHpLimitLocked() const {
  return limits_.per_hp_bytes != 0 ? limits_.per_hp_bytes
                                   : DefaultLimit(size_t{512} << 20, 8);
}

size_t MemoryBudget::TotalLimitLocked() const {
  return limits_.total_bytes != 0 ? limits_.total_bytes
                                  : DefaultLimit(size_t{1} << 30, 4);
}

uint64_t MemoryBudget::NewOwner() {
  absl::MutexLock lock(&mu_);
  return next_owner_++;
}

void MemoryBudget::SetCurrentOwner(uint64_t owner) {
  absl::MutexLock lock(&mu_);
  current_owner_ = owner;
}

uint64_t MemoryBudget::current_owner() const {
  absl::MutexLock lock(&mu_);
  return current_owner_;
}

absl::Status MemoryBudget::Charge(uintptr_t key, size_t bytes,
                                  const std::string& what) {
  std::function<void()> reclaim;
  {
    absl::MutexLock lock(&mu_);
    bool total_bound = false;
    absl::Status s = ChargeLocked(key, bytes, what, &total_bound);
    if (s.ok() || !total_bound || reusable_ == 0 || !reclaim_) return s;
    reclaim = reclaim_;
  }
  // The kept engine buffers may be what stands in the way: free them (the
  // reclaimer reports through SetReusable, so not under the lock).
  reclaim();
  absl::MutexLock lock(&mu_);
  bool total_bound = false;
  return ChargeLocked(key, bytes, what, &total_bound);
}

void MemoryBudget::SetReusable(size_t bytes) {
  absl::MutexLock lock(&mu_);
  reusable_ = bytes;
}

size_t MemoryBudget::reusable() const {
  absl::MutexLock lock(&mu_);
  return reusable_;
}

void MemoryBudget::SetReclaimer(std::function<void()> reclaim) {
  absl::MutexLock lock(&mu_);
  reclaim_ = std::move(reclaim);
}

size_t MemoryBudget::Reclaim() {
  std::function<void()> reclaim;
  size_t before = 0;
  {
    absl::MutexLock lock(&mu_);
    before = reusable_;
    if (before == 0 || !reclaim_) return 0;
    reclaim = reclaim_;
  }
  reclaim();  // reports through SetReusable: not under the lock
  absl::MutexLock lock(&mu_);
  return before > reusable_ ? before - reusable_ : 0;
}

absl::Status MemoryBudget::ChargeLocked(uintptr_t key, size_t bytes,
                                        const std::string& what,
                                        bool* total_bound) {
  const uint64_t owner = current_owner_;
  const size_t held = by_owner_.contains(owner) ? by_owner_[owner] : 0;
  const size_t hp_limit = PerHpLimitLocked();
  const size_t total_limit = TotalLimitLocked();
  const char* which = nullptr;
  size_t limit = 0;
  if (held + bytes > hp_limit) {
    which = "this hp's";
    limit = hp_limit;
  } else if (total_ + reusable_ + bytes > total_limit) {
    which = "the annex's total";
    limit = total_limit;
    *total_bound = true;
  }
  if (which != nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "annex memory budget: keeping ", what, " (", FormatBytes(bytes),
        ") would pass ", which, " limit of ", FormatBytes(limit),
        " (this hp keeps ", FormatBytes(held), ", all hp objects ",
        FormatBytes(total_),
        reusable_ != 0 ? absl::StrCat(", the heap engine's buffers ",
                                      FormatBytes(reusable_))
                       : "",
        "). Free sets you no longer need (del them); ",
        "what this hp keeps, largest first:\n", DescribeLocked(owner, 5)));
  }
  Holding& h = holdings_[key];
  if (h.bytes != 0) {  // a key reused without Release: credit the old one
    by_owner_[h.owner] -= h.bytes;
    total_ -= h.bytes;
  }
  h = Holding{key, owner, bytes, what};
  by_owner_[owner] += bytes;
  total_ += bytes;
  return absl::OkStatus();
}

absl::Status MemoryBudget::CheckTransient(size_t bytes,
                                          const std::string& what) const {
  absl::MutexLock lock(&mu_);
  auto it = by_owner_.find(current_owner_);
  const size_t held = it == by_owner_.end() ? 0 : it->second;
  const size_t hp_limit = PerHpLimitLocked();
  const size_t total_limit = TotalLimitLocked();
  const size_t hp_left = held < hp_limit ? hp_limit - held : 0;
  const size_t total_left = total_ < total_limit ? total_limit - total_ : 0;
  if (bytes <= hp_left && bytes <= total_left) return absl::OkStatus();
  const bool per_hp = hp_left <= total_left;
  return absl::ResourceExhaustedError(absl::StrCat(
      "annex memory budget: ", what, " needs about ", FormatBytes(bytes),
      " of transient memory, more than ",
      per_hp ? "this hp's limit" : "the annex's total limit", " of ",
      FormatBytes(per_hp ? hp_limit : total_limit), " leaves (",
      FormatBytes(per_hp ? hp_left : total_left), "; this hp keeps ",
      FormatBytes(held), " in sets, all hp objects ", FormatBytes(total_),
      "). Nothing was kept and the target runs again. Free kept sets (del "
      "them) or raise the limit "
      "(Options::annex_memory, annex run --memory-budget); what this hp "
      "keeps, largest first:\n",
      DescribeLocked(current_owner_, 5)));
}

void MemoryBudget::Release(uintptr_t key) {
  absl::MutexLock lock(&mu_);
  auto it = holdings_.find(key);
  if (it == holdings_.end()) return;
  by_owner_[it->second.owner] -= it->second.bytes;
  total_ -= it->second.bytes;
  holdings_.erase(it);
}

std::vector<MemoryBudget::Holding> MemoryBudget::Holdings(
    uint64_t owner) const {
  absl::MutexLock lock(&mu_);
  std::vector<Holding> out;
  for (const auto& [key, h] : holdings_) {
    if (h.owner == owner) out.push_back(h);
  }
  std::sort(out.begin(), out.end(), [](const Holding& a, const Holding& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.key < b.key;
  });
  return out;
}

size_t MemoryBudget::HeldBy(uint64_t owner) const {
  absl::MutexLock lock(&mu_);
  auto it = by_owner_.find(owner);
  return it == by_owner_.end() ? 0 : it->second;
}

size_t MemoryBudget::Total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

std::string MemoryBudget::Describe(uint64_t owner, size_t max_rows) const {
  absl::MutexLock lock(&mu_);
  return DescribeLocked(owner, max_rows);
}

std::string MemoryBudget::DescribeLocked(uint64_t owner,
                                         size_t max_rows) const {
  std::vector<const Holding*> mine;
  for (const auto& [key, h] : holdings_) {
    if (h.owner == owner) mine.push_back(&h);
  }
  std::sort(mine.begin(), mine.end(), [](const Holding* a, const Holding* b) {
    return a->bytes != b->bytes ? a->bytes > b->bytes : a->key < b->key;
  });
  auto it = by_owner_.find(owner);
  const size_t held = it == by_owner_.end() ? 0 : it->second;
  std::string out = absl::StrFormat(
      "Kept sets of this hp: %d, %s (limit %s); all hp objects: %s "
      "(limit %s)\n",
      mine.size(), FormatBytes(held), FormatBytes(PerHpLimitLocked()),
      FormatBytes(total_), FormatBytes(TotalLimitLocked()));
  if (reusable_ != 0) {
    absl::StrAppend(&out, "Heap engine buffers kept for the next question: ",
                    FormatBytes(reusable_),
                    " (count toward the total; freed when a set needs the "
                    "room)\n");
  }
  if (mine.empty()) return out;
  absl::StrAppend(&out, " Index        Bytes  Set\n");
  for (size_t i = 0; i < mine.size() && i < max_rows; ++i) {
    absl::StrAppendFormat(&out, "%6d %12d  %s at 0x%x\n", i, mine[i]->bytes,
                          mine[i]->what, mine[i]->key);
  }
  if (mine.size() > max_rows) {
    absl::StrAppend(&out, "<", mine.size() - max_rows, " more sets>\n");
  }
  return out;
}

}  // namespace annex::glue
