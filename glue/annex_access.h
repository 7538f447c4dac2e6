// The session service through which other services reach the annex runtime
// (its thread states, its interrupt). The monitor installs its factory; a
// session without one has no annex (Get<AnnexAccess>() fails).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitor/heap/lanes.h"
#include "monitor/python/annex_runtime.h"

namespace annex::glue {

class Session;

class AnnexAccess {
 public:
  // `question_pause_limit`: how long one heap question may hold the target
  // unless a console client sets its own (Options::question_pause_limit);
  // `question_lanes`: the threads its long passes may use
  // (Options::question_threads).
  explicit AnnexAccess(
      python::AnnexRuntime* runtime,
      absl::Duration question_pause_limit = absl::InfiniteDuration(),
      heap::Lanes question_lanes = heap::Lanes::ForMachine())
      : runtime_(runtime),
        question_pause_limit_(question_pause_limit),
        question_lanes_(question_lanes) {}
  static absl::StatusOr<std::unique_ptr<AnnexAccess>> Create(Session&) {
    return absl::FailedPreconditionError("this session has no annex");
  }
  python::AnnexRuntime& runtime() { return *runtime_; }
  absl::Duration question_pause_limit() const { return question_pause_limit_; }
  heap::Lanes question_lanes() const { return question_lanes_; }

 private:
  python::AnnexRuntime* runtime_;
  absl::Duration question_pause_limit_;
  heap::Lanes question_lanes_;
};

}  // namespace annex::glue
