// The report's Python module and page. See report.h.
#include "glue/module/report.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "glue/heap_record.h"
#include "glue/module/py_ref.h"
#include "glue/module/report_py.h"
#include "glue/stat.h"

namespace annex::glue {
namespace {

// Where (all of these): the report's interpreter, GIL held.
PyObject* ReadRecords(PyObject*, PyObject* arg) {
  const char* path = PyUnicode_AsUTF8(arg);
  if (path == nullptr) return nullptr;
  absl::StatusOr<std::vector<std::string>> lines;
  Py_BEGIN_ALLOW_THREADS;
  lines = ReadRecordFile(path);
  Py_END_ALLOW_THREADS;
  if (!lines.ok()) {
    const std::string message(lines.status().message());
    PyErr_SetString(PyExc_ValueError, message.c_str());
    return nullptr;
  }
  module::PyRef list =
      module::PyRef::Steal(PyList_New(static_cast<Py_ssize_t>(lines->size())));
  if (!list) return nullptr;
  for (size_t i = 0; i < lines->size(); ++i) {
    const std::string& l = (*lines)[i];
    PyObject* s = PyUnicode_DecodeUTF8(
        l.data(), static_cast<Py_ssize_t>(l.size()), "replace");
    if (s == nullptr) return nullptr;
    PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), s);  // steals s
  }
  return list.release();
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
bool ToStat(PyObject* dict, Stat* stat) {
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
    StatRow r;
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
  Stat a, b;
  if (!ToStat(first, &a) || !ToStat(last, &b)) return nullptr;
  absl::StatusOr<Stat> diff = Stat::Diff(b, a, 0);
  if (!diff.ok()) {
    const std::string message(diff.status().message());
    PyErr_SetString(PyExc_ValueError, message.c_str());
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

}  // namespace

PyObject* LoadReportPy() {
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  if (PyDict_GetItemString(modules, "_annex_report") == nullptr) {
    module::PyRef m = module::PyRef::Steal(PyModule_Create(&kModule));
    if (!m || PyDict_SetItemString(modules, "_annex_report", m.get()) < 0) {
      return nullptr;
    }
  }
  // report.py's source (//tools:embed_file.bzl), compiled under its path
  // so that tracebacks name it.
  module::PyRef code = module::PyRef::Steal(Py_CompileString(
      embedded::kReportPy, embedded::kReportPyPath, Py_file_input));
  if (!code) return nullptr;
  return PyImport_ExecCodeModule("annex_report", code.get());
}

}  // namespace annex::glue
