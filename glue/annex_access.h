// The session service through which other services reach the annex runtime
// (its thread states, its interrupt). The monitor installs its factory; a
// session without one has no annex (Get<AnnexAccess>() fails).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "monitor/python/annex_runtime.h"

namespace annex::glue {

class Session;

class AnnexAccess {
 public:
  explicit AnnexAccess(python::AnnexRuntime* runtime) : runtime_(runtime) {}
  static absl::StatusOr<std::unique_ptr<AnnexAccess>> Create(Session&) {
    return absl::FailedPreconditionError("this session has no annex");
  }
  python::AnnexRuntime& runtime() { return *runtime_; }

 private:
  python::AnnexRuntime* runtime_;
};

}  // namespace annex::glue
