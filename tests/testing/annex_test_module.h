// The `annex_test` module: what a Python hp test (tests/hp/test_*.py, run in
// the annex by tests/testing/annex_unittest_main.cc) imports to reach the
// target and to report its outcome. Testing-only code, never part of
// libannex. The module's Python half is annex_unittest.py (embedded).
//
//   RegisterAnnexTestModule();            // before Py_Initialize
//   ... Monitor monitor; monitor.Start(options);
//   SetAnnexTestHost(&runtime, options);  // before the test's ExecInAnnex
//   ... ExecInAnnex("__import__('annex_test')._run(globals())", 1)
//   AnnexTestReport report = TakeAnnexTestReport();
#pragma once

#include <string>

#include "monitor/monitor.h"
#include "monitor/python/annex_runtime.h"

namespace annex::testing {

// Adds `annex_test` to the built-in modules of every interpreter made after
// (a multi-phase module, one per interpreter: each annex imports its own).
// Where: the main thread, before Py_Initialize.
void RegisterAnnexTestModule();

// What the test (or the listing) in the annex reported through
// annex_test._report(kind, text). `kind` is "" when nothing reported.
struct AnnexTestReport {
  std::string kind;  // "pass", "fail", "skip", "list", "error"
  std::string text;  // traceback, skip reason or the listing
};

// The runtime whose target annex_test.target_exec/target_eval reach, the
// options monitor_option() shows, and what _run()/_list() work on: the
// module path, and for _run the test class and method. Clears the report.
// Where: any thread, while no annex code runs (the driver's main thread
// between two ExecInAnnex calls).
void SetAnnexTestHost(python::AnnexRuntime* runtime, const Options& options,
                      const std::string& module_path,
                      const std::string& test_class = "",
                      const std::string& test_method = "");

// Takes the last report (and clears it). Where: any thread, while no annex
// code runs.
AnnexTestReport TakeAnnexTestReport();

}  // namespace annex::testing
