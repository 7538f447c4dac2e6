// The watchdog's stall logic as a pure function of samples, so it can be
// tested without an interpreter. The watchdog thread feeds it one sample per
// tick (read without the GIL through monitor/python/cpython_peek.h).
//
//   StallDetector detector({.timeout_ns = 5'000'000'000});
//   if (auto verdict = detector.Update(sample)) Report(*verdict);
//
// How the kinds are told apart (facts in docs/watchdog.md):
// - The GIL records its holder and counts holder changes; a holder whose
//   identity and switch count stay the same at every sample (and the GIL
//   locked) has kept the GIL for that whole time: a "run".
// - The main thread serves a heartbeat (a pending call) at its next bytecode
//   boundary. Main holds the GIL and its heartbeat is overdue: stuck in C.
//   Main holds the GIL for a whole timeout and has served a heartbeat within
//   the last half timeout: busy in Python.
// - Another thread keeps the GIL: its innermost frame or instruction pointer
//   changing between samples, or a served probe, means it runs bytecode (busy
//   in Python); not changing for a whole timeout means stuck in C. Busy is
//   reported when asked for, or when target threads have been asking for the
//   GIL for a whole timeout (a drop request stays up): the holder does not hand
//   the GIL over, e.g. a thread of another interpreter on 3.11/3.12
//   (docs/design.md rule 2).
// - Heartbeat overdue and nobody kept the GIL: main is blocked without it.
// - Annex's own thread states (heap walks, console work) take the GIL too.
//   Their takes do not end a run: a run of a target thread is kept aside
//   while one of Annex's thread states holds the GIL (or nobody does) and
//   goes on when the same thread holds it again and every switch in between
//   is explained by Annex's takes (Config::switches_explained). Otherwise a
//   busy loop would never be seen for a whole timeout while the heap is
//   walked every second.
#pragma once

#include <cstdint>
#include <optional>

#include "monitor/watchdog/stall_kind.h"

namespace annex::watchdog::internal {

// One observation of the target, taken without the GIL. Plain data.
struct StallSample {
  int64_t now_ns = 0;
  // GIL state; `holder` is null when unknown or not a live thread state.
  bool gil_locked = false;
  const void* holder = nullptr;
  unsigned long switch_number = 0;
  bool holder_is_main = false;
  const void* holder_frame = nullptr;
  const void* holder_instr = nullptr;
  // Changes whenever the holder proved it reached a bytecode boundary (a
  // served probe), where the instruction pointer is not enough (3.13).
  int64_t holder_progress = 0;
  // Some target thread has been waiting for the GIL (a drop request is up).
  bool gil_wanted = false;
  // The holder is one of Annex's own thread states (not the program's).
  bool holder_is_own = false;
  // The target's main thread state (null when not found).
  const void* main_thread = nullptr;
  // Heartbeat: sent time of the outstanding one (0 when none is outstanding).
  int64_t heartbeat_outstanding_since_ns = 0;
};

// A stall to report: which kind, about which thread state, for how long.
struct StallVerdict {
  StallKind kind = StallKind::kStuckInC;
  const void* thread = nullptr;
  bool is_main = false;
  int64_t duration_ns = 0;
  // Target threads were waiting for the GIL while `thread` kept it.
  bool gil_wanted = false;
  // The GIL's switch number at detection (`thread`'s run; for kStuckInC or
  // kBlockedWithoutGil of main that does not hold it, the sample's).
  unsigned long switch_number = 0;
};

// Whether every GIL switch in (from, to] was Annex's own doing (see
// AnnexPeekSwitchesExplained); `allow_last` lets `to` itself be anything.
using SwitchesExplained = int (*)(unsigned long from, unsigned long to,
                                  int allow_last);

// Not thread-safe: owned and used by the watchdog thread only.
class StallDetector {
 public:
  struct Config {
    int64_t timeout_ns = 0;
    bool report_busy_main = true;
    bool report_busy_workers = false;
    bool report_blocked_main = false;
    // Null: no switch is explained, any switch ends a run.
    SwitchesExplained switches_explained = nullptr;
  };

  explicit StallDetector(const Config& config) : config_(config) {}

  // Feeds one sample (non-decreasing `now_ns`); returns a verdict at most
  // once per stall episode: per GIL run and kind, or per overdue heartbeat.
  std::optional<StallVerdict> Update(const StallSample& sample);

 private:
  struct Run {
    bool active = false;
    const void* holder = nullptr;
    unsigned long switch_number = 0;
    bool is_main = false;
    int64_t start_ns = 0;
    const void* frame = nullptr;
    const void* instr = nullptr;
    int64_t progress = 0;
    int64_t last_move_ns = 0;     // last sample where frame or instr changed
    int64_t wanted_since_ns = 0;  // first sample of the current drop request
    bool reported_stuck = false;
    bool reported_busy = false;
    bool own = false;  // the holder is one of Annex's thread states
  };

  // Whether `run` goes on in sample `s` (same holder, switches explained).
  bool Continues(const Run& run, const StallSample& s) const;

  Config config_;
  Run run_;
  // A target thread's run kept aside while Annex holds the GIL (or nobody
  // does); it goes on if the same thread holds the GIL next.
  Run suspended_;
  int64_t reported_heartbeat_ = 0;  // send time of the heartbeat reported on
  bool have_sample_ = false;
  int64_t last_sample_ns_ = 0;
};

}  // namespace annex::watchdog::internal
