// `annex report`. See report.h.
//
// The page is made by report.py, run in an isolated interpreter of this
// process; it reads the files through the built-in module `_annex_report`,
// which uses the bounded readers of glue/heap_record.h and prints tables
// with glue::Stat (Heapy's layouts), so nothing is parsed or printed twice.
#include "monitor/cli/report.h"

#include <Python.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "annex_python_build.h"
#include "glue/heap_record.h"
#include "glue/stat.h"
#include "monitor/cli/report_py.h"

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

// Where (all of these): the report's interpreter, GIL held.
PyObject* ReadRecords(PyObject*, PyObject* arg) {
  const char* path = PyUnicode_AsUTF8(arg);
  if (path == nullptr) return nullptr;
  absl::StatusOr<std::vector<std::string>> lines;
  Py_BEGIN_ALLOW_THREADS;
  lines = glue::ReadRecordFile(path);
  Py_END_ALLOW_THREADS;
  if (!lines.ok()) {
    PyErr_SetString(PyExc_ValueError,
                    std::string(lines.status().message()).c_str());
    return nullptr;
  }
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(lines->size()));
  if (list == nullptr) return nullptr;
  for (size_t i = 0; i < lines->size(); ++i) {
    const std::string& l = (*lines)[i];
    PyObject* s = PyUnicode_DecodeUTF8(
        l.data(), static_cast<Py_ssize_t>(l.size()), "replace");
    if (s == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), s);
  }
  return list;
}

bool GetInt(PyObject* dict, const char* key, int64_t* out) {
  PyObject* v = PyDict_GetItemString(dict, key);  // borrowed
  if (v == nullptr || !PyLong_Check(v)) {
    PyErr_Format(PyExc_ValueError, "partition: '%s' is not an integer", key);
    return false;
  }
  *out = PyLong_AsLongLong(v);
  return !PyErr_Occurred();
}

bool GetStr(PyObject* dict, const char* key, std::string* out) {
  PyObject* v = PyDict_GetItemString(dict, key);  // borrowed
  if (v == nullptr) {
    out->clear();
    return true;
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : nullptr;
  if (s == nullptr) {
    if (!PyErr_Occurred()) {
      PyErr_Format(PyExc_ValueError, "partition: '%s' is not a string", key);
    }
    return false;
  }
  out->assign(s, static_cast<size_t>(n));
  return true;
}

// A record's partition ({"classifier", "kind_header", "count", "size",
// "rows": [{"kind", "count", "size"}]}) as a Stat.
bool ToStat(PyObject* dict, glue::Stat* stat) {
  if (!PyDict_Check(dict)) {
    PyErr_SetString(PyExc_ValueError, "partition: not an object");
    return false;
  }
  if (!GetStr(dict, "classifier", &stat->er) ||
      !GetStr(dict, "kind_header", &stat->kind_header) ||
      !GetInt(dict, "count", &stat->count) ||
      !GetInt(dict, "size", &stat->size)) {
    return false;
  }
  if (stat->kind_header.empty()) {
    stat->kind_header = "Kind (class / dict of class)";
  }
  PyObject* rows = PyDict_GetItemString(dict, "rows");  // borrowed
  if (rows == nullptr || !PyList_Check(rows)) {
    PyErr_SetString(PyExc_ValueError, "partition: 'rows' is not a list");
    return false;
  }
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); ++i) {
    PyObject* row = PyList_GET_ITEM(rows, i);
    glue::StatRow r;
    if (!PyDict_Check(row)) {
      PyErr_SetString(PyExc_ValueError, "partition: a row is not an object");
      return false;
    }
    if (!GetStr(row, "kind", &r.kind) || !GetInt(row, "count", &r.count) ||
        !GetInt(row, "size", &r.size)) {
      return false;
    }
    stat->rows.push_back(std::move(r));
  }
  return true;
}

// tables(first, last, rows) -> (growth, partition): Heapy's difference
// table of last - first and last's partition table, `rows` rows each.
PyObject* Tables(PyObject*, PyObject* args) {
  PyObject* first = nullptr;
  PyObject* last = nullptr;
  Py_ssize_t rows = 20;
  if (!PyArg_ParseTuple(args, "OOn:tables", &first, &last, &rows)) {
    return nullptr;
  }
  glue::Stat a, b;
  if (!ToStat(first, &a) || !ToStat(last, &b)) return nullptr;
  absl::StatusOr<glue::Stat> diff = glue::Stat::Diff(b, a, 0);
  if (!diff.ok()) {
    PyErr_SetString(PyExc_ValueError,
                    std::string(diff.status().message()).c_str());
    return nullptr;
  }
  const size_t n = rows < 1 ? 1 : static_cast<size_t>(rows);
  const std::string growth = diff->Table(0, n, true);
  const std::string partition = b.Table(0, n, true);
  return Py_BuildValue("(s#s#)", growth.data(),
                       static_cast<Py_ssize_t>(growth.size()), partition.data(),
                       static_cast<Py_ssize_t>(partition.size()));
}

PyMethodDef kMethods[] = {
    {"read_records", ReadRecords, METH_O,
     "read_records(path) -> [str]: the file's heap records as JSON lines."},
    {"tables", Tables, METH_VARARGS,
     "tables(first, last, rows) -> (growth, partition) table texts."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_annex_report", nullptr, -1,
                       kMethods};

extern "C" PyObject* InitReportModule() { return PyModule_Create(&kModule); }

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
  if (PyImport_AppendInittab("_annex_report", &InitReportModule) != 0) {
    std::fputs("annex report: cannot register its module\n", stderr);
    return 1;
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
  // report.py's source (//tools:embed_file.bzl), compiled under its path.
  PyObject* code = Py_CompileString(embedded::kReportPy,
                                    embedded::kReportPyPath, Py_file_input);
  PyObject* module =
      code ? PyImport_ExecCodeModule("annex_report", code) : nullptr;
  Py_XDECREF(code);
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
