// What a walk gives hosts and recordings: MakeHeapRecord and
// HeapView::Summary.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/annex_access.h"
#include "glue/heap_view.h"
#include "glue/heap_view_parts.h"
#include "glue/session.h"
#include "monitor/heap/address_index.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/huge_pages.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/referrers.h"
#include "monitor/heap/retention.h"
#include "monitor/python/guards.h"
#include "monitor/python/target_threads.h"
#include "monitor/python/version.h"

namespace annex::glue {

HeapRecord MakeHeapRecord(KindedSet heap, size_t top_rows, int64_t pause_us,
                          int64_t time_us) {
  HeapRecord r;
  r.time_us = time_us;
  r.pause_us = pause_us;
  heap.classifier = Classifier();  // Clodo
  r.clodo = heap.ToStat(time_us).Limited(top_rows);
  heap.classifier = *Classifier::Parse("Type");
  r.type = heap.ToStat(time_us).Limited(top_rows);
  return r;
}

absl::StatusOr<Stat> HeapView::Summary(const Classifier& c, size_t max_rows,
                                       const ReferencePoint* ref) {
  absl::StatusOr<KindedSet> heap = Heap(ref, /*keep=*/false);
  if (!heap.ok()) return heap.status();
  const int64_t made = absl::ToUnixMicros(absl::Now());
  absl::StatusOr<KindedSet> set = Classify(*heap, c);
  if (!set.ok()) return set.status();
  return set->ToStat(made).Limited(max_rows);
}

}  // namespace annex::glue
