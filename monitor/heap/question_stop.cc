// Why a heap question stopped early (see question_stop.h).
#include "monitor/heap/question_stop.h"

#include "absl/strings/str_cat.h"

namespace annex::heap {

absl::Status QuestionStop::status() const {
  switch (why_) {
    case Why::kNone:
      return absl::OkStatus();
    case Why::kCancelled:
      return absl::CancelledError(
          "the heap question was cancelled; the target runs again");
    case Why::kPauseLimit:
      return absl::DeadlineExceededError(absl::StrCat(
          "the heap question stopped after holding the target for ",
          absl::FormatDuration(
              absl::Trunc(absl::Now() - start_, absl::Milliseconds(1))),
          ", past ", limits_.limit_name, " of ",
          absl::FormatDuration(limits_.pause_limit),
          "; the target runs again. Ask about a smaller set (one row of a "
          "table, or x[:10]), or raise the limit (",
          limits_.limit_name, ")"));
  }
  return absl::OkStatus();
}

}  // namespace annex::heap
