// Initializing CPython as the interpreter this build was compiled against,
// for Annex's own programs (tests, benchmarks). A host embeds Python its own
// way (see examples/embed_minimal); the `annex` command passes argv through.
//
//   if (absl::Status s = annex::python::InitializeEmbedded(); !s.ok()) ...
#pragma once

#include "absl/status/status.h"

namespace annex::python {

// Py_InitializeFromConfig with this build's interpreter executable as the
// program name, so its own standard library is found (never the python3 on
// PATH). Signal handlers are not installed unless asked for. Internal with
// CPython's message when initialization fails.
// Where: the process's main thread, before any other Python call.
absl::Status InitializeEmbedded(bool install_signal_handlers = false);

}  // namespace annex::python
