// Initializing the embedded interpreter for Annex's own programs.
#include "monitor/python/embed.h"

#include <Python.h>

#include <string>

#include "annex_python_build.h"

namespace annex::python {

absl::Status InitializeEmbedded(bool install_signal_handlers) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = install_signal_handlers ? 1 : 0;
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            ANNEX_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    return absl::InternalError(std::string("cannot initialize Python ") +
                               ANNEX_PYTHON_VERSION + ": " +
                               (status.err_msg ? status.err_msg : "?"));
  }
  return absl::OkStatus();
}

}  // namespace annex::python
