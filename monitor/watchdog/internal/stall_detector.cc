// Stall classification from GIL-free samples: see stall_detector.h.
#include "monitor/watchdog/internal/stall_detector.h"

namespace annex::watchdog::internal {

bool StallDetector::Continues(const Run& run, const StallSample& s) const {
  if (!run.active || run.holder != s.holder) return false;
  if (run.switch_number == s.switch_number) return true;
  return config_.switches_explained != nullptr &&
         config_.switches_explained(run.switch_number, s.switch_number,
                                    /*allow_last=*/0) != 0;
}

std::optional<StallVerdict> StallDetector::Update(const StallSample& s) {
  const int64_t timeout = config_.timeout_ns;
  // A gap between samples (the watchdog thread itself was not scheduled)
  // is a gap in the evidence: a run must be seen, not inferred, so it
  // restarts. Without this a loaded machine reads as a still thread.
  const bool gap = have_sample_ && s.now_ns - last_sample_ns_ > timeout / 4;
  have_sample_ = true;
  last_sample_ns_ = s.now_ns;
  if (gap) {
    run_.active = false;
    suspended_.active = false;
  }
  // Track the current GIL run.
  if (s.gil_locked && s.holder != nullptr) {
    // Annex's own thread state took over: keep the target's run aside.
    if (s.holder_is_own && run_.active && !run_.own) suspended_ = run_;
    const bool continues = Continues(run_, s);
    // Back from Annex's hold (or from a moment nobody held the GIL): the
    // same thread, and someone took the GIL in between, all of it Annex.
    const bool resumes = !continues && !s.holder_is_own &&
                         suspended_.switch_number != s.switch_number &&
                         Continues(suspended_, s);
    if (resumes) run_ = suspended_;
    if (!s.holder_is_own) suspended_.active = false;
    if (continues || resumes) {
      run_.switch_number = s.switch_number;
    } else {
      run_ = Run{};
      run_.active = true;
      run_.holder = s.holder;
      run_.switch_number = s.switch_number;
      run_.is_main = s.holder_is_main;
      run_.own = s.holder_is_own;
      run_.start_ns = s.now_ns;
      run_.last_move_ns = s.now_ns;
    }
    if ((continues || resumes) &&
        (s.holder_frame != run_.frame || s.holder_instr != run_.instr ||
         s.holder_progress != run_.progress)) {
      run_.last_move_ns = s.now_ns;
    }
    run_.frame = s.holder_frame;
    run_.instr = s.holder_instr;
    run_.progress = s.holder_progress;
    if (!s.gil_wanted) {
      run_.wanted_since_ns = 0;
    } else if (run_.wanted_since_ns == 0) {
      run_.wanted_since_ns = s.now_ns;
    }
  } else {
    if (run_.active && !run_.own) suspended_ = run_;
    run_.active = false;
  }

  const int64_t heartbeat_age =
      s.heartbeat_outstanding_since_ns != 0
          ? s.now_ns - s.heartbeat_outstanding_since_ns
          : 0;
  const bool heartbeat_overdue = heartbeat_age >= timeout;
  const bool heartbeat_reported =
      heartbeat_overdue &&
      reported_heartbeat_ == s.heartbeat_outstanding_since_ns;

  if (run_.active) {
    const int64_t run_age = s.now_ns - run_.start_ns;
    if (run_.is_main) {
      // Main keeps the GIL. Its heartbeat tells whether it reaches bytecode
      // boundaries (the instruction pointer cannot: `while True: pass` jumps
      // to itself). The run must also have been seen for a while: after a
      // sampling gap it restarts, and an overdue heartbeat alone would then
      // read as "stuck" from a single sample (the main thread may have run
      // bytecode during the gap, e.g. the whole process was paused).
      if (heartbeat_overdue && !heartbeat_reported && !run_.reported_stuck &&
          run_age >= timeout / 2) {
        run_.reported_stuck = true;
        reported_heartbeat_ = s.heartbeat_outstanding_since_ns;
        return StallVerdict{StallKind::kStuckInC,
                            run_.holder,
                            true,
                            heartbeat_age < run_age ? heartbeat_age : run_age,
                            run_.wanted_since_ns != 0,
                            run_.switch_number};
      }
      // Busy needs evidence of bytecode boundaries: a heartbeat served
      // recently. An older outstanding one leaves it undecided: it becomes
      // overdue (stuck in C) or gets served (busy).
      if (heartbeat_age < timeout / 2 && run_age >= timeout &&
          !run_.reported_busy) {
        run_.reported_busy = true;
        if (config_.report_busy_main) {
          return StallVerdict{
              StallKind::kBusyPython,    run_.holder,       true, run_age,
              run_.wanted_since_ns != 0, run_.switch_number};
        }
      }
    } else {
      const int64_t still = s.now_ns - run_.last_move_ns;
      const bool starving = run_.wanted_since_ns != 0 &&
                            s.now_ns - run_.wanted_since_ns >= timeout;
      if (still >= timeout && !run_.reported_stuck) {
        run_.reported_stuck = true;
        if (heartbeat_overdue) {
          reported_heartbeat_ = s.heartbeat_outstanding_since_ns;
        }
        return StallVerdict{
            StallKind::kStuckInC,      run_.holder,       false, still,
            run_.wanted_since_ns != 0, run_.switch_number};
      }
      if (run_age >= timeout && still < timeout && !run_.reported_busy &&
          (config_.report_busy_workers || starving)) {
        run_.reported_busy = true;
        if (heartbeat_overdue) {
          reported_heartbeat_ = s.heartbeat_outstanding_since_ns;
        }
        return StallVerdict{
            StallKind::kBusyPython, run_.holder, false, run_age, starving,
            run_.switch_number};
      }
    }
  }

  // Main serves no heartbeat and no thread kept the GIL: main is blocked
  // without it (or waits behind threads that take turns).
  const bool main_holds = run_.active && run_.is_main;
  const bool culprit_reported = run_.active && run_.reported_stuck;
  if (heartbeat_overdue && !heartbeat_reported && !main_holds &&
      !culprit_reported) {
    reported_heartbeat_ = s.heartbeat_outstanding_since_ns;
    if (config_.report_blocked_main) {
      return StallVerdict{StallKind::kBlockedWithoutGil,
                          s.main_thread,
                          true,
                          heartbeat_age,
                          s.gil_wanted,
                          s.switch_number};
    }
  }
  return std::nullopt;
}

}  // namespace annex::watchdog::internal
