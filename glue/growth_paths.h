// Why the growing kinds are kept, for heap records (docs/recording.md,
// "Paths to the growing kinds"): for the few kinds whose bytes grew most
// since the previous record, the shortest reference path from a root to
// one of their objects, named as `x.sp` names it:
//   %R.sys.modules['app'].__dict__['cache']['k1234']
//
// Which kind grows is known only against an earlier record, and naming an
// edge reads the objects, so the recorder keeps each record's totals by
// kind (KindTotals, plain data) and asks for the paths inside the question
// of the next walk, before the target runs again. A path leads to an
// object that is new since the previous record where there is one (its
// address was not in that record), so a kind that grows by a few objects
// is explained by the path to those, not to its oldest member.
//
//   GrowthBaseline now = MakeGrowthBaseline(graph, set.clodo,
//                                           *set.kind_names);
//   std::string json = GrowthPathsJson(graph, set.clodo, *set.kind_names,
//                                      now, previous);
//   previous = std::move(now);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/question_stop.h"

namespace annex::glue {

struct KindTotal {
  int64_t count = 0;
  int64_t bytes = 0;
};
// Kind name -> its objects and bytes (every kind, nothing folded).
using KindTotals = absl::flat_hash_map<std::string, KindTotal>;

// What one record leaves for the next to compare with: its totals by kind
// and the addresses of its objects (sorted; 8 bytes an object, kept by the
// recorder between two records).
struct GrowthBaseline {
  KindTotals totals;
  std::vector<uintptr_t> addresses;
  bool empty() const { return totals.empty(); }
};

// The baseline of a walk's graph: node v has kind `kinds[v]` (an index into
// `kind_names`) and graph.sizes[v] bytes. Pure C++, any thread.
GrowthBaseline MakeGrowthBaseline(const heap::HeapGraph& graph,
                                  const std::vector<uint32_t>& kinds,
                                  const std::vector<std::string>& kind_names);

struct GrowthPathOptions {
  size_t max_kinds = 3;  // the kinds that grew most, by bytes
  // A longer path keeps this many named edges at each end and says how
  // many it left out between them (a 200 000-long chain stays readable).
  size_t end_edges = 24;
  // The walk's question's stop (HeapEngine::question_stop()): the searches
  // poll it, and once it says stop (the pause limit passed, or the question
  // was cancelled) the kinds not yet searched get no path ("stopped": true).
  // Not owned; may be null.
  heap::QuestionStop* stop = nullptr;
};

// A JSON array, largest growth first, of {"kind", "count", "size",
// "count_growth", "size_growth", "new", "length", "path"} for the kinds of
// `now` whose bytes grew since `before` (at most options.max_kinds; "[]"
// when none grew or `before` is empty). The path leads to the nearest
// object of the kind that was not at its address in `before` ("new":
// true), or, when every one of them was (an address reused), to the
// nearest of them all ("new": false). "length" is its number of edges and
// "path" its text, both null when no object of the kind is reachable or
// the search was stopped (then "stopped": true).
// Node v of `graph` has kind `kinds[v]`.
// Where: annex thread, GIL held, inside the HeapEngine::Question of the
// walk that built `graph` (its objects are read to name the edges;
// heap::PathsTo's rule). Never runs target Python code.
std::string GrowthPathsJson(const heap::HeapGraph& graph,
                            const std::vector<uint32_t>& kinds,
                            const std::vector<std::string>& kind_names,
                            const GrowthBaseline& now,
                            const GrowthBaseline& before,
                            GrowthPathOptions options = GrowthPathOptions());

}  // namespace annex::glue
