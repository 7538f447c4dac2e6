// Private to heap_view's source files (heap_view.cc, kinded_set.cc,
// classify_objects.cc, heap_view_classify.cc, heap_view_texts.cc,
// heap_view_records.cc): what more than one of them uses.
#pragma once

#include <cstddef>
#include <vector>

namespace annex::glue::heap_view_parts {

// Calls f(i) for each index i below `count` that is not in `dead` (sorted
// ascending, as DeadMembers gives it), in order.
template <typename F>
void ForEachLiveIndex(size_t count, const std::vector<size_t>& dead, F f) {
  size_t d = 0;
  for (size_t i = 0; i < count; ++i) {
    if (d < dead.size() && dead[d] == i) {
      ++d;
    } else {
      f(i);
    }
  }
}

}  // namespace annex::glue::heap_view_parts
