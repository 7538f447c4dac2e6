// What a walk gives hosts and recordings: MakeHeapRecord and
// HeapView::Summary.

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/heap_view.h"

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
