// Names of the stall kinds, for reports and logs.
#include "monitor/watchdog/stall_kind.h"

namespace annex::watchdog {

const char* StallKindName(StallKind kind) {
  switch (kind) {
    case StallKind::kStuckInC:
      return "stuck_in_c";
    case StallKind::kBusyPython:
      return "busy_python";
    case StallKind::kBlockedWithoutGil:
      return "blocked_without_gil";
  }
  return "unknown";
}

}  // namespace annex::watchdog
