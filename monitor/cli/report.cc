// `annex report`. See report.h.
//
// The page is made by glue/module/report.h (report.py over the module
// `_annex_report`, shared with hp.pb), run in an isolated interpreter of
// this process.
#include "monitor/cli/report.h"

#include <Python.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "annex_python_build.h"
#include "glue/module/report.h"

namespace annex::cli {
namespace {

constexpr char kReportUsage[] =
    R"(usage: annex report FILE... -o OUT.html [--top N] [--title TEXT]

Reads heap records written by 'annex record' or 'annex run --record' (either
format; give FILE.1 too to include the rotated part) and writes one
self-contained HTML page (no network access when opened): memory over time
as a stacked area by kind (the N largest kinds, default 8, the rest folded),
the growth between two records (Heapy's difference table; the first and the
last record until others are chosen in the page, whose script recomputes
it), RSS and the walks' pauses, the dominator tree's top retainers when the
records hold them ('annex run --record-retainers'), and the last record's
partition.
)";

}  // namespace

int RunReport(int argc, char** argv) {
  std::vector<std::string> files;
  std::string out, title;
  long top = 8;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kReportUsage, stdout);
      return 0;
    } else if (a == "-o" && i + 1 < argc) {
      out = argv[++i];
    } else if (a == "--title" && i + 1 < argc) {
      title = argv[++i];
    } else if (a == "--top" && i + 1 < argc) {
      char* end = nullptr;
      top = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || top < 1 || top > 30) {
        std::fputs("annex report: --top needs 1 to 30\n", stderr);
        return 2;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr,
                   "annex report: unknown option or missing value: %s\n%s",
                   a.c_str(), kReportUsage);
      return 2;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty() || out.empty()) {
    std::fputs(kReportUsage, stderr);
    return 2;
  }
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            ANNEX_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    std::fprintf(stderr, "annex report: Python did not start: %s\n",
                 status.err_msg != nullptr ? status.err_msg : "?");
    return 1;
  }
  int rc = 1;
  PyObject* module = glue::LoadReportPy();
  PyObject* py_files = PyList_New(0);
  for (const std::string& f : files) {
    PyObject* s = PyUnicode_DecodeFSDefault(f.c_str());
    if (s != nullptr) PyList_Append(py_files, s);
    Py_XDECREF(s);
  }
  PyObject* py_out = PyUnicode_DecodeFSDefault(out.c_str());
  PyObject* result = module && py_files && py_out
                         ? PyObject_CallMethod(module, "main", "OOsl", py_files,
                                               py_out, title.c_str(), top)
                         : nullptr;
  Py_XDECREF(py_out);
  if (result != nullptr) {
    rc = 0;
  } else if (PyErr_ExceptionMatches(PyExc_ValueError) ||
             PyErr_ExceptionMatches(PyExc_OSError)) {
    // Bad input or an unwritable output: the message alone.
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* text = value ? PyObject_Str(value) : nullptr;
    const char* s = text ? PyUnicode_AsUTF8(text) : nullptr;
    std::fprintf(stderr, "annex report: %s\n", s ? s : "error");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
  } else {
    PyErr_Print();  // a bug in report.py: its traceback
  }
  Py_XDECREF(result);
  Py_XDECREF(py_files);
  Py_XDECREF(module);
  if (Py_FinalizeEx() < 0 && rc == 0) rc = 1;
  return rc;
}

}  // namespace annex::cli
