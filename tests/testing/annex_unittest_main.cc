// The test driver of Python hp tests (tests/hp, tools/testing.bzl's
// hp_unittest): a GoogleTest main() that runs one unittest module in the
// annex of a Monitor over this binary's embedded target interpreter.
//
//   annex_unittest_main MODULE.py [gtest flags]
//
// Each test method of the module is one GoogleTest case
// `<TestClass>.<test_method>` (listed by running unittest's loader in the
// annex); a module that does not load is one failing case `<module>.load`.
// Each case starts its own Monitor, runs the test in a fresh console
// namespace of it (`hp` new for the test) and stops it: the same isolation
// the C++ hp fixtures give (a new annex interpreter, no reference point,
// kept set, death watch or session state such as the last walk's type
// names left from another test; one Monitor per binary would share its
// session's HeapView between tests). That costs about 150 ms per case
// (start, module load, stop of an empty test, measured on the shared
// 2-core machine under load), what the C++ fixtures paid too. Failures and
// errors become GoogleTest failures carrying unittest's traceback (the .py file
// and line), skips GTEST_SKIP(); a case passes only when the module reported a
// pass.
#include <Python.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glue/annex_access.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/embed.h"
#include "tests/testing/annex_test_module.h"

namespace annex::testing {
namespace {

// The namespace of ExecInAnnex each test runs in (a Monitor per test, so
// one id serves all).
constexpr uint64_t kNamespace = 1;

// The runtime of a started Monitor, for annex_test. Where: any thread.
absl::StatusOr<python::AnnexRuntime*> RuntimeOf(Monitor& monitor) {
  absl::StatusOr<glue::AnnexAccess*> access =
      monitor.session()->Get<glue::AnnexAccess>();
  if (!access.ok()) return access.status();
  return &(*access)->runtime();
}

// Runs annex_test.<function>(globals()) in a fresh namespace of a Monitor
// started with `options`, for `test_class.test_method` of `path` ("" to
// list), and returns what the module reported, or the error. *output gets
// what the code printed. Where: the main thread, GIL held (released while
// the annex works).
absl::StatusOr<AnnexTestReport> RunInAnnex(const Options& options,
                                           const std::string& path,
                                           const std::string& function,
                                           const std::string& test_class,
                                           const std::string& test_method,
                                           std::string* output) {
  Monitor monitor;
  if (absl::Status s = monitor.Start(options); !s.ok()) return s;
  absl::StatusOr<python::AnnexRuntime*> runtime = RuntimeOf(monitor);
  if (!runtime.ok()) return runtime.status();
  SetAnnexTestHost(*runtime, options, path, test_class, test_method);
  absl::StatusOr<std::string> out = monitor.ExecInAnnex(
      "__import__('annex_test')." + function + "(globals())", kNamespace);
  AnnexTestReport report = TakeAnnexTestReport();
  SetAnnexTestHost(nullptr, options, "");
  absl::Status stopped = monitor.Stop();
  if (!out.ok()) return out.status();
  if (!stopped.ok()) return stopped;
  *output = *out;
  return report;
}

// The line of the last frame of `path` in a traceback (where the test
// failed), 0 when no frame is there. Where: any thread.
int LastLineIn(const std::string& traceback, const std::string& path) {
  const std::string frame = "File \"" + path + "\", line ";
  const size_t at = traceback.rfind(frame);
  int line = 0;
  if (at == std::string::npos) return 0;
  const size_t from = at + frame.size();
  const size_t end = traceback.find_first_not_of("0123456789", from);
  if (!absl::SimpleAtoi(traceback.substr(from, end - from), &line)) return 0;
  return line;
}

// One Python test method as a GoogleTest case. Where: the main thread, GIL
// held (python_main's convention: tests start and end with it).
class PythonCase : public ::testing::Test {
 public:
  PythonCase(std::string path, std::string test_class, std::string method)
      : path_(std::move(path)),
        class_(std::move(test_class)),
        method_(std::move(method)) {}

  void TestBody() override {
    std::string output;
    absl::StatusOr<AnnexTestReport> report =
        RunInAnnex(Options(), path_, "_run", class_, method_, &output);
    ASSERT_TRUE(report.ok()) << class_ << "." << method_ << " in " << path_
                             << " did not run to its end: " << report.status();
    const std::string printed =
        output.empty() ? "" : absl::StrCat("\nThe test printed:\n", output);
    if (report->kind == "pass") return;
    if (report->kind == "skip") GTEST_SKIP() << report->text;
    if (report->kind == "fail") {
      ADD_FAILURE_AT(path_.c_str(), LastLineIn(report->text, path_))
          << class_ << "." << method_ << " failed:\n"
          << report->text << printed;
      return;
    }
    ADD_FAILURE() << path_ << ": " << class_ << "." << method_
                  << " reported no outcome (" << report->kind << ")" << printed;
  }

 private:
  std::string path_, class_, method_;
};

// The case for a module that does not load: fails with why.
class LoadFailure : public ::testing::Test {
 public:
  explicit LoadFailure(std::string why) : why_(std::move(why)) {}
  void TestBody() override { ADD_FAILURE() << why_; }

 private:
  std::string why_;
};

// The module's stem: "tests/hp/test_heap.py" -> "test_heap".
std::string ModuleName(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0) {
    name.resize(name.size() - 3);
  }
  return name;
}

// Registers the module's cases (or its one failing `<module>.load`).
// Where: the main thread, GIL held, before RUN_ALL_TESTS.
void RegisterCases(const std::string& path) {
  std::string output;
  absl::StatusOr<AnnexTestReport> listed =
      RunInAnnex(Options(), path, "_list", "", "", &output);
  std::string why;
  if (!listed.ok()) {
    why = absl::StrCat("listing the tests of ", path,
                       " failed: ", listed.status().ToString());
  } else if (listed->kind == "error") {
    why = absl::StrCat(path, " does not load:\n", listed->text, output);
  } else if (listed->kind != "list") {
    why = absl::StrCat("listing the tests of ", path,
                       " reported no listing: ", output);
  }
  if (!why.empty()) {
    ::testing::RegisterTest(
        ModuleName(path).c_str(), "load", nullptr, nullptr, path.c_str(), 1,
        [why]() -> ::testing::Test* { return new LoadFailure(why); });
    return;
  }
  int registered = 0;
  for (absl::string_view line :
       absl::StrSplit(listed->text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    std::vector<std::string> names = absl::StrSplit(parts[0], '.');
    int line_no = 0;
    if (parts.size() != 2 || names.size() != 2 ||
        !absl::SimpleAtoi(parts[1], &line_no)) {
      continue;
    }
    const std::string cls = names[0], method = names[1];
    ::testing::RegisterTest(cls.c_str(), method.c_str(), nullptr, nullptr,
                            path.c_str(), line_no,
                            [path, cls, method]() -> ::testing::Test* {
                              return new PythonCase(path, cls, method);
                            });
    ++registered;
  }
  if (registered == 0) {
    const std::string none = path + " defines no test";
    ::testing::RegisterTest(
        ModuleName(path).c_str(), "load", nullptr, nullptr, path.c_str(), 1,
        [none]() -> ::testing::Test* { return new LoadFailure(none); });
  }
}

}  // namespace
}  // namespace annex::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODULE.py [gtest flags]\n", argv[0]);
    return 2;
  }
  annex::testing::RegisterAnnexTestModule();
  if (absl::Status s = annex::python::InitializeEmbedded(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string{s.message()}.c_str());
    return 2;
  }
  annex::testing::RegisterCases(argv[1]);
  int rc = RUN_ALL_TESTS();
  if (Py_FinalizeEx() < 0 && rc == 0) rc = 3;
  return rc;
}
