// The kinds of stall the watchdog tells apart (see docs/watchdog.md).
#pragma once

namespace annex::watchdog {

enum class StallKind {
  // A target thread holds the GIL and does not reach a bytecode boundary:
  // it is stuck in C code (an extension, a blocking call made without
  // releasing the GIL). Every other Python thread is blocked behind it.
  kStuckInC,
  // A target thread keeps the GIL and runs Python: the main thread in an
  // endless or very long loop (the host never gets control back), or another
  // thread that keeps the GIL (reported only when asked for).
  kBusyPython,
  // The target's main thread is blocked without the GIL (sleeping, waiting
  // on a lock or I/O) and does not serve the heartbeat. Often normal (idle),
  // so it is reported only when asked for.
  kBlockedWithoutGil,
};

// "stuck_in_c", "busy_python", "blocked_without_gil".
const char* StallKindName(StallKind kind);

}  // namespace annex::watchdog
