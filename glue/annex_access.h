// The session service through which other services reach the annex runtime
// (its thread states, its interrupt). The monitor installs its factory; a
// session without one has no annex (Get<AnnexAccess>() fails).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitor/python/annex_runtime.h"

namespace annex::glue {

class Session;

class AnnexAccess {
 public:
  // `question_pause_limit`: how long one heap question may hold the target
  // unless a console client sets its own (Options::question_pause_limit).
  explicit AnnexAccess(
      python::AnnexRuntime* runtime,
      absl::Duration question_pause_limit = absl::InfiniteDuration())
      : runtime_(runtime), question_pause_limit_(question_pause_limit) {}
  static absl::StatusOr<std::unique_ptr<AnnexAccess>> Create(Session&) {
    return absl::FailedPreconditionError("this session has no annex");
  }
  python::AnnexRuntime& runtime() { return *runtime_; }
  absl::Duration question_pause_limit() const { return question_pause_limit_; }

 private:
  python::AnnexRuntime* runtime_;
  absl::Duration question_pause_limit_;
};

}  // namespace annex::glue
