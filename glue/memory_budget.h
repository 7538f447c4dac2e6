// MemoryBudget: how much of the host's memory the annex's kept sets may
// hold, per `hp` object (each console client's, or one the host made) and
// for the whole monitor, and what each hp holds now. The annex lives in the
// host's process: an hp that keeps 50 sets of a 510 K-object heap held
// 560 MB of the host's memory with no limit and no way to see it. Every
// annex.IdSet is charged here when it is made and credited when it is
// freed; one that would pass a limit is refused with a message that lists
// what the hp holds. (The `session` below is the glue::Session, the
// monitor's service container, which holds one MemoryBudget.)
//
//   absl::StatusOr<MemoryBudget*> budget = session.Get<MemoryBudget>();
//   MemoryLimits limits;
//   limits.per_hp_bytes = size_t{256} << 20;
//   (*budget)->SetLimits(limits);
//   absl::Status s = (*budget)->Charge(key, bytes, "hp.heap()");
//   ... (*budget)->Release(key);
//
// One question's transient memory (a walk, a graph, a dominator tree) is
// not kept: CheckTransient() refuses a question whose estimate would pass
// what the owner's budget has left, before it builds the big structures.
//
// The heap engine's buffers kept between questions (heap/buffer_pool.h)
// count too: SetReusable() reports them; they count toward the total limit
// (not an hp's) and are reclaimed (SetReclaimer) before a set is
// refused for want of room. A question's own transient estimate does not
// add them, since the question reuses them.
//
// Sets are charged to the current owner: the hp whose console command is
// running (SetCurrentOwner, set by whoever runs it: glue::ActFor), or
// owner 0 (the host's own calls) otherwise. Where: any thread (a mutex guards
// the accounts); in practice the annex thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace annex::glue {

class Session;

struct MemoryLimits {
  // Bytes one `hp` object (a console client's) may keep in sets; 0: the
  // default, 512 MiB or an eighth of the machine's physical memory if less.
  size_t per_hp_bytes = 0;
  // Bytes all hp objects of the monitor together may keep; 0: the default,
  // 1 GiB or a quarter of the machine's physical memory if less.
  size_t total_bytes = 0;
};

class MemoryBudget {
 public:
  struct Holding {
    uintptr_t key = 0;   // the set's identity (its object)
    uint64_t owner = 0;  // the hp that made it
    size_t bytes = 0;
    std::string what;  // e.g. "<510312 objects, Clodo>"
  };

  static absl::StatusOr<std::unique_ptr<MemoryBudget>> Create(Session&);
  MemoryBudget();

  // Replaces the limits (0 fields: the defaults). Sets held already stay.
  void SetLimits(const MemoryLimits& limits);
  MemoryLimits limits() const;

  // A new owner id (for a new `hp` object).
  uint64_t NewOwner();
  // The owner new sets are charged to (0: the host).
  void SetCurrentOwner(uint64_t owner);
  uint64_t current_owner() const;

  // Charges `bytes` for the set `key` to the current owner, or, when that
  // would pass the hp's or the total limit, ResourceExhausted with a
  // message that says which limit, what the hp holds (its largest
  // sets) and how to free them. Nothing is charged then.
  absl::Status Charge(uintptr_t key, size_t bytes, const std::string& what);
  // Credits what `key` was charged (harmless when it was not).
  void Release(uintptr_t key);

  // The bytes of buffers the heap engine keeps for the next question
  // (replaces the last value). Where: any thread; must not be called from
  // inside the reclaimer.
  void SetReusable(size_t bytes);
  size_t reusable() const;
  // What frees those buffers (and reports 0 through SetReusable): called,
  // without the budget's lock, when a Charge would pass the total limit
  // while buffers are kept; the Charge is then tried once more.
  void SetReclaimer(std::function<void()> reclaim);
  // Frees the kept engine buffers now (hp.memory(trim=True)): calls the
  // reclaimer, without the lock, when buffers are kept; returns the bytes
  // it freed (0 with no reclaimer or nothing kept). Where: any thread.
  size_t Reclaim();

  // Whether one question that needs about `bytes` of transient memory
  // (its walk, graph and what it builds from them, freed when it ends)
  // fits in what the current owner's limit and the total leave beside the
  // kept sets: OK, or ResourceExhausted saying what `what` needed, what is
  // left and what to do. Nothing is charged (questions run one at a time,
  // on the annex thread).
  absl::Status CheckTransient(size_t bytes, const std::string& what) const;

  // What `owner` holds, largest first, and the bytes it and everyone hold.
  std::vector<Holding> Holdings(uint64_t owner) const;
  size_t HeldBy(uint64_t owner) const;
  size_t Total() const;
  // A table of what `owner` holds and the limits (hp.memory()).
  std::string Describe(uint64_t owner, size_t max_rows = 10) const;

 private:
  size_t PerHpLimitLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t TotalLimitLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeLocked(uint64_t owner, size_t max_rows) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  MemoryLimits limits_ ABSL_GUARDED_BY(mu_);
  uint64_t next_owner_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t current_owner_ ABSL_GUARDED_BY(mu_) = 0;
  // Charge() under the lock, once; `*total_bound` tells whether the total
  // limit (which reclaiming can help) refused it.
  absl::Status ChargeLocked(uintptr_t key, size_t bytes,
                            const std::string& what, bool* total_bound)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  size_t total_ ABSL_GUARDED_BY(mu_) = 0;
  size_t reusable_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> reclaim_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, size_t> by_owner_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uintptr_t, Holding> holdings_ ABSL_GUARDED_BY(mu_);
};

// Readable byte counts for messages: "512.0 MiB", "3.2 KiB", "17 bytes".
std::string FormatBytes(size_t bytes);

}  // namespace annex::glue
