// The heap engine's oracle: a breadth-first walk run inside the target from
// the engine's own roots, with gc.get_referents plus what tp_traverse does
// not report (code objects' and types' fields, read through Python
// attributes; see oracle_util.cc), and the comparison of its result with
// the engine's. Test-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace annex::heap::testing {

// Defines _annex_oracle in the target's __main__. GIL held, target current.
bool InstallOracle();

struct Comparison {
  size_t engine = 0, oracle = 0;
  std::vector<std::string> only_engine, only_oracle;  // up to 10 each
  // The engine's total by its default sizing (Sizing::kExact) and, of it,
  // the attribute values blocks; its total with Sizing::kGetsizeof; the
  // oracle's sum of sys.getsizeof.
  uint64_t engine_bytes = 0, engine_values_bytes = 0;
  uint64_t engine_getsizeof_bytes = 0, oracle_bytes = 0;
  // The values blocks by the oracle's layout reading (oracle_util.cc):
  // the sum of each block's least and greatest possible size (equal on
  // 3.13), and how many objects have one; the engine's count of objects
  // whose default size exceeds sys.getsizeof.
  uint64_t oracle_values_min = 0, oracle_values_max = 0;
  size_t oracle_values_objects = 0, engine_values_objects = 0;
  // Objects whose block the engine sized outside the oracle's bounds
  // ("description engine least-greatest"), up to 10.
  // Objects per type name, as the engine and as the oracle counted them,
  // for the types where the two differ ("type engine oracle"), up to 10.
  std::vector<std::string> type_differences;
  // When the byte totals differ: objects whose engine size differs from
  // sys.getsizeof now ("description engine getsizeof"), up to 10.
  std::vector<std::string> size_differences;
  std::vector<std::string> values_differences;
};

// Walks with the engine, then with the oracle, from the same roots. Other
// target threads must not run in between (e.g. sys.setswitchinterval set
// high by the caller); the target's gc is disabled for the duration.
//
// On 3.11/3.12 reading frame.f_locals stores a snapshot dict in the frame,
// which keeps its values alive until the next read: a second comparison's
// engine walk would see the first oracle's stale snapshots. With
// `refresh_frame_locals` every root frame's snapshot is brought up to date
// before the engine walks, and the oracle counts the snapshot dicts too.
// GIL held, target current, no Python frames on this thread.
Comparison Compare(bool refresh_frame_locals = false);

// Fails the current test unless the byte totals of `c` agree: the engine's
// sys.getsizeof total equals the oracle's, and each values block the
// engine adds is within the oracle's bounds. Names `workload`.
void ExpectBytesMatch(const Comparison& c, const std::string& workload);

// Fails the current test unless the two walks agree exactly (counts, bytes,
// members, counts by type), naming `workload`.
void ExpectMatch(const char* workload, bool refresh_frame_locals = false);

}  // namespace annex::heap::testing
