// The stats face of `hp`: x.stat (annex.Stat: rows without objects), stat
// differences, dump records appended to files and read back with hp.load /
// hp.loadall, JSON for other tools, and Heapy's paging (x.more shows the
// next ten rows, and .more of that the ten after; annex.More).
//
// The files themselves are Python (python/stat_files.py, compiled in):
// it writes with the annex's own `io` module and reads paths with os.open
// and os.read, so paths may be str, bytes or os.PathLike, errors are the
// usual OSError subclasses, and the GIL is released while the file system
// works. This file feeds what it reads to StatReader (stat.h) as a stream
// with bounds (line and record limits, only regular files unless asked).
// Texts are UTF-8; bytes that are not (a type name from C) travel as
// surrogateescape, so every kind reads back exactly.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"
#include "glue/module/stat_files_py.h"
#include "glue/stat.h"

namespace annex::glue::module {
namespace {

// Where (everything in this file): annex thread, GIL held, annex current.

using StatPtr = std::shared_ptr<const Stat>;

struct StatObject {
  PyObject_HEAD StatPtr* stat;
};

struct MoreObject {
  PyObject_HEAD StatPtr* stat;
  Py_ssize_t first;  // the page's first row
};

constexpr size_t kPageRows = 10;  // Heapy's max_more_lines

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

bool IsStat(PyObject* o) { return IsAnnexType(o, AnnexName::kStat); }

const Stat& StatOf(PyObject* o) {
  return **reinterpret_cast<StatObject*>(o)->stat;
}

// A str from our UTF-8 text (surrogateescape for bytes that are not).
PyObject* Str(const std::string& s) {
  return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()),
                              "surrogateescape");
}

// The bytes of a str or bytes object; false with an exception set.
bool Bytes(PyObject* o, std::string* out) {
  if (PyBytes_Check(o)) {
    out->assign(PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    return true;
  }
  if (!PyUnicode_Check(o)) {
    PyErr_Format(PyExc_TypeError, "expected str or bytes, got %.100s",
                 Py_TYPE(o)->tp_name);
    return false;
  }
  PyRef b =
      PyRef::Steal(PyUnicode_AsEncodedString(o, "utf-8", "surrogateescape"));
  if (!b) return false;
  out->assign(PyBytes_AS_STRING(b.get()), PyBytes_GET_SIZE(b.get()));
  return true;
}

std::string Chomp(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

PyObject* NewMore(StatPtr stat, size_t first) {
  PyTypeObject* t = AnnexType(AnnexName::kMore);
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  if (obj == nullptr) return nullptr;
  reinterpret_cast<MoreObject*>(obj)->stat = new StatPtr(std::move(stat));
  reinterpret_cast<MoreObject*>(obj)->first = static_cast<Py_ssize_t>(first);
  return obj;
}

// The page after the first one (x.more).
PyObject* FirstMore(StatPtr stat) {
  const size_t next = stat->PageEnd(0, kPageRows);
  return NewMore(std::move(stat), next);
}

// ------------------------------------------------------------------ files

// type_name(obj) for stat_files.py: the name of obj's type as CPython's
// own messages give it (tp_name: "annex.Stat", where __name__ is "Stat").
PyObject* TypeName(PyObject*, PyObject* obj) {
  return PyUnicode_FromString(Py_TYPE(obj)->tp_name);
}

PyMethodDef kTypeNameDef = {"type_name", TypeName, METH_O,
                            "The name of obj's type, as in messages."};

// Runs stat_files.py (python/stat_files.py, embedded) in a namespace
// of its own that holds type_name, and keeps that namespace in `module` as
// `_stat_files`. Compiled under its source path, so tracebacks name the .py
// file. 0, or -1 with an error set. Where: module exec.
int AddStatFiles(PyObject* module) {
  PyRef type_name = PyRef::Steal(PyCFunction_New(&kTypeNameDef, nullptr));
  if (!type_name) return -1;
  PyRef ns = PyRef::Steal(
      Py_BuildValue("{sOsOss}", "type_name", type_name.get(), "__builtins__",
                    PyEval_GetBuiltins(), "__name__", "annex._stat_files"));
  if (!ns) return -1;
  PyRef code = PyRef::Steal(Py_CompileString(
      embedded::kStatFilesPy, embedded::kStatFilesPyPath, Py_file_input));
  if (!code) return -1;
  PyRef r = PyRef::Steal(PyEval_EvalCode(code.get(), ns.get(), ns.get()));
  if (!r) return -1;
  return PyModule_AddObjectRef(module, "_stat_files", ns.get());
}

// Calls stat_files.py's function `name` with `args` (a new reference,
// released; nullptr after an error). New reference, or nullptr with the
// error set.
PyObject* CallStatFiles(const char* name, PyObject* args_in) {
  PyRef args = PyRef::Steal(args_in);
  if (!args) return nullptr;
  PyObject* ns = AnnexObject(AnnexName::kStatFiles);
  if (ns == nullptr) return nullptr;
  PyObject* fn = PyDict_Check(ns) ? PyDict_GetItemString(ns, name)  // borrowed
                                  : nullptr;
  if (fn == nullptr) {
    return PyErr_Format(PyExc_RuntimeError, "%s defines no %s",
                        embedded::kStatFilesPyPath, name);
  }
  return PyObject_CallObject(fn, args.get());
}

// Appends (mode "a") or writes (mode "w") `text` to `dest`: a path or an
// open file (stat_files.py's write_text).
PyObject* WriteText(PyObject* dest, const std::string& text, const char* mode,
                    const char* what) {
  PyObject* s = Str(text);
  if (s == nullptr) return nullptr;
  return CallStatFiles("write_text",
                       Py_BuildValue("(ONss)", dest, s, mode, what));
}

// Feeds `chunks` (an iterator of str or bytes from stat_files.py) to
// `reader` until an empty chunk or the iterator's end (`*at_end`), a
// reader error (left in `*status`) or, when `one_record`, the first whole
// record; then closes the iterator (a path's file with it). false with the
// error set.
bool FeedChunks(PyObject* chunks, StatReader& reader, bool one_record,
                absl::Status* status, bool* at_end) {
  *at_end = false;
  if (!PyIter_Check(chunks)) {
    PyErr_Format(PyExc_TypeError, "%s gave %.100s where chunks belong",
                 embedded::kStatFilesPyPath, Py_TYPE(chunks)->tp_name);
    return false;
  }
  std::string chunk;
  bool ok = true;
  while (status->ok() && !(one_record && reader.complete_records() > 0)) {
    PyRef data = PyRef::Steal(PyIter_Next(chunks));
    if (!data) {
      ok = !PyErr_Occurred();
      *at_end = ok;
      break;
    }
    ok = Bytes(data.get(), &chunk);
    if (!ok) break;
    if (chunk.empty()) {
      *at_end = true;
      break;
    }
    *status = reader.Feed(chunk);
  }
  // Close the chunks now (a path's file with them), keeping an error
  // already set as the one raised.
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyRef closed =
      PyGen_Check(chunks)
          ? PyRef::Steal(PyObject_CallMethod(chunks, "close", nullptr))
          : PyRef::NewRef(Py_None);
  if (!closed) {
    if (type != nullptr) PyErr_Clear();
    ok = false;
  }
  if (type != nullptr) PyErr_Restore(type, value, tb);
  return ok;
}

// hp.load(f) of an open file: the next record, read from `lines`
// (stat_files.py's record_lines: f.readline() up to and including the
// record's '.end:' line, so the file is left just after it and the next
// call reads the record after; Heapy's load of an open file; a loop of
// load(f) walks a file of several dumps). Blank lines before the record
// are skipped. Memory is bounded as for a path: lines are read in pieces
// of at most 64 Ki characters and the reader refuses a line or a record
// past StatLimits. nullptr with EOFError when only blank lines (or
// nothing) are left, ValueError for a malformed or cut-short record, or
// the file's own error.
PyObject* LoadNextRecord(PyObject* lines) {
  StatReader reader{StatLimits()};
  absl::Status status;
  bool at_end = false;
  if (!FeedChunks(lines, reader, /*one_record=*/true, &status, &at_end)) {
    return nullptr;
  }
  // The last line may lack its '\n'; a record begun but not ended is an
  // error.
  if (status.ok() && at_end) status = reader.Finish();
  if (!status.ok()) {
    const std::string message(status.message());
    PyErr_Format(PyExc_ValueError,
                 "%s (in the file, lines counted from where this load() "
                 "began)",
                 message.c_str());
    return nullptr;
  }
  std::vector<Stat> records = reader.TakeRecords();
  if (records.empty()) {
    PyErr_SetString(PyExc_EOFError,
                    "load(): no more stat records in the file (it is at its "
                    "end)");
    return nullptr;
  }
  return NewStat(std::move(records.front()));
}

// The records of `source` for load()/loadall(): the dump text itself (a
// str that starts with ".loader:"), or what stat_files.py's load_source
// reads (a file at a path, or what an open file has left to read), read
// as a stream with StatLimits' bounds (all records, or only the last one).
// nullptr with ValueError / OSError / TypeError set.
std::unique_ptr<std::vector<Stat>> LoadRecords(PyObject* source, bool last_only,
                                               bool special) {
  StatLimits limits;
  limits.keep_last_only = last_only;
  StatReader reader(limits);
  absl::Status status;
  std::string where;
  bool is_text = false;
  if (PyUnicode_Check(source)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(source, &n);
    if (s == nullptr) PyErr_Clear();
    is_text =
        s != nullptr && absl::StartsWith(absl::string_view(s, n), ".loader:");
    if (is_text) {
      where = "the text";
      status = reader.Feed(absl::string_view(s, n));
    }
  }
  if (!is_text) {
    PyRef from = PyRef::Steal(CallStatFiles(
        "load_source",
        Py_BuildValue("(OO)", source, special ? Py_True : Py_False)));
    PyObject* shown = nullptr;   // borrowed from `from`
    PyObject* chunks = nullptr;  // borrowed from `from`
    if (!from ||
        !PyArg_ParseTuple(from.get(), "UO:load_source", &shown, &chunks) ||
        !Bytes(shown, &where)) {
      return nullptr;
    }
    bool at_end = false;
    if (!FeedChunks(chunks, reader, /*one_record=*/false, &status, &at_end)) {
      return nullptr;
    }
  }
  if (status.ok()) status = reader.Finish();
  if (!status.ok()) {
    const std::string message(status.message());
    PyErr_Format(PyExc_ValueError, "%s (in %s)", message.c_str(),
                 where.c_str());
    return nullptr;
  }
  return std::make_unique<std::vector<Stat>>(reader.TakeRecords());
}

// hp.load / hp.loadall arguments: (source, *, special=False).
bool LoadArgs(PyObject* args, PyObject* kwds, const char* format,
              PyObject** source, int* special) {
  static const char* kw[] = {"source", "special", nullptr};
  *special = 0;
  return PyArg_ParseTupleAndKeywords(args, kwds, format, const_cast<char**>(kw),
                                     source, special);
}

// ------------------------------------------------------------- annex.Stat

PyObject* StatJson(PyObject* self, PyObject*);

void StatClear(PyObject* self) {
  delete reinterpret_cast<StatObject*>(self)->stat;
}

PyObject* StatRepr(PyObject* self) {
  return Str(Chomp(StatOf(self).Table(0, kPageRows, true)));
}

Py_ssize_t StatLen(PyObject* self) {
  return static_cast<Py_ssize_t>(StatOf(self).numrows());
}

// stat[i], stat[a:b]: those rows as a stat (Heapy's).
PyObject* StatSubscript(PyObject* self, PyObject* key) {
  const Stat& stat = StatOf(self);
  const Py_ssize_t n = static_cast<Py_ssize_t>(stat.numrows());
  std::vector<size_t> rows;
  if (PySlice_Check(key)) {
    Py_ssize_t start, stop, step, len;
    if (PySlice_GetIndicesEx(key, n, &start, &stop, &step, &len) < 0) {
      return nullptr;
    }
    for (Py_ssize_t i = 0, r = start; i < len; ++i, r += step) {
      rows.push_back(static_cast<size_t>(r));
    }
  } else if (PyIndex_Check(key)) {
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return nullptr;
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      PyErr_SetString(PyExc_IndexError, "Stat index out of range.");
      return nullptr;
    }
    rows.push_back(static_cast<size_t>(i));
  } else {
    PyErr_SetString(PyExc_TypeError,
                    "Stat indices must be integers or slices.");
    return nullptr;
  }
  return NewStat(stat.Select(rows));
}

PyObject* StatSub(PyObject* a, PyObject* b) {
  if (!IsStat(a)) Py_RETURN_NOTIMPLEMENTED;
  if (!IsStat(b)) {
    PyErr_Format(PyExc_TypeError,
                 "Can only take difference with other Stat instance, not "
                 "%.100s (x.stat - y.stat)",
                 Py_TYPE(b)->tp_name);
    return nullptr;
  }
  absl::StatusOr<Stat> d = Stat::Diff(StatOf(a), StatOf(b), NowMicros());
  if (!d.ok()) return RaiseStatus(d.status());
  return NewStat(std::move(*d));
}

PyObject* StatRichCompare(PyObject* a, PyObject* b, int op) {
  if ((op != Py_EQ && op != Py_NE) || !IsStat(a) || !IsStat(b)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  const bool eq = StatOf(a) == StatOf(b);
  return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

PyObject* StatCount(PyObject* self, void*) {
  return PyLong_FromLongLong(StatOf(self).count);
}
PyObject* StatSize(PyObject* self, void*) {
  return PyLong_FromLongLong(StatOf(self).size);
}
PyObject* StatNumRows(PyObject* self, void*) {
  return PyLong_FromSize_t(StatOf(self).numrows());
}
PyObject* StatKindHeader(PyObject* self, void*) {
  return Str(StatOf(self).kind_header);
}
PyObject* StatKindName(PyObject* self, void*) {
  return Str(StatOf(self).kind_name);
}
PyObject* StatEr(PyObject* self, void*) { return Str(StatOf(self).er); }
PyObject* StatFormat(PyObject* self, void*) {
  return PyUnicode_FromString(
      StatOf(self).format == Stat::Format::kDiff ? "DiffFormat" : "SetFormat");
}
PyObject* StatTimeMade(PyObject* self, void*) {
  return PyFloat_FromDouble(static_cast<double>(StatOf(self).time_made_us) /
                            1e6);
}
PyObject* StatBCount(PyObject* self, void*) {
  const Stat& s = StatOf(self);
  if (s.format != Stat::Format::kDiff) Py_RETURN_NONE;
  return PyLong_FromLongLong(s.b_count);
}
PyObject* StatBSize(PyObject* self, void*) {
  const Stat& s = StatOf(self);
  if (s.format != Stat::Format::kDiff) Py_RETURN_NONE;
  return PyLong_FromLongLong(s.b_size);
}
PyObject* StatRows(PyObject* self, void*) {
  const Stat& s = StatOf(self);
  PyRef list = PyRef::Steal(PyList_New(static_cast<Py_ssize_t>(s.rows.size())));
  if (!list) return nullptr;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    PyRef kind = PyRef::Steal(Str(s.rows[i].kind));
    if (!kind) return nullptr;
    PyObject* row = Py_BuildValue("(OLL)", kind.get(),
                                  static_cast<long long>(s.rows[i].count),
                                  static_cast<long long>(s.rows[i].size));
    if (row == nullptr) return nullptr;
    PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), row);  // steals
  }
  return list.release();
}
// The record's other fields (a heap record's labels) as a dict of str.
PyObject* StatFields(PyObject* self, void*) {
  PyRef dict = PyRef::Steal(PyDict_New());
  if (!dict) return nullptr;
  for (const auto& [name, value] : StatOf(self).fields) {
    PyRef v = PyRef::Steal(Str(value));
    if (!v || PyDict_SetItemString(dict.get(), name.c_str(), v.get()) < 0) {
      return nullptr;
    }
  }
  return dict.release();
}
// Heapy's firstheader: a line before the table ('' for Annex's stats).
PyObject* StatFirstHeader(PyObject*, void*) { return PyUnicode_FromString(""); }

// A new annex.StatRow (Heapy's StatRow: name, count, size, index,
// cumulsize); `index` < 0 makes index and cumulsize None (the '<Other>' row
// of get_rows_n_and_other).
PyObject* NewStatRow(const StatRow& row, Py_ssize_t index, int64_t cumulsize) {
  PyTypeObject* type = AnnexType(AnnexName::kStatRow);
  if (type == nullptr) return nullptr;
  PyRef r = PyRef::Steal(PyStructSequence_New(type));
  if (!r) return nullptr;
  PyObject* name = Str(row.kind);
  PyObject* count = PyLong_FromLongLong(row.count);
  PyObject* size = PyLong_FromLongLong(row.size);
  PyObject* idx = index < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(index);
  PyObject* cumul =
      index < 0 ? Py_NewRef(Py_None) : PyLong_FromLongLong(cumulsize);
  PyObject* items[] = {name, count, size, idx, cumul};
  bool ok = true;
  for (int i = 0; i < 5; ++i) {
    ok &= items[i] != nullptr;
    PyStructSequence_SetItem(r.get(), i,  // steals the item
                             items[i] ? items[i] : Py_NewRef(Py_None));
  }
  return ok ? r.release() : nullptr;
}

// Rows [first, end) as StatRows with their indexes and cumulative sizes.
PyObject* RowList(const Stat& s, size_t first) {
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  int64_t cumul = 0;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    cumul += s.rows[i].size;
    if (i < first) continue;
    if (!ListAppendNew(
            list.get(),
            NewStatRow(s.rows[i], static_cast<Py_ssize_t>(i), cumul))) {
      return nullptr;
    }
  }
  return list.release();
}

// s.get_rows(idx=0): the rows from idx on, as StatRows (a list; Heapy's is
// a generator).
PyObject* StatGetRows(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"idx", nullptr};
  Py_ssize_t idx = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:get_rows",
                                   const_cast<char**>(kw), &idx)) {
    return nullptr;
  }
  if (idx < 0) {
    PyErr_SetString(PyExc_ValueError, "get_rows(idx): idx must be >= 0");
    return nullptr;
  }
  return RowList(StatOf(self), static_cast<size_t>(idx));
}

// s.get_row(idx): row idx as a StatRow; IndexError past the rows.
PyObject* StatGetRow(PyObject* self, PyObject* arg) {
  const Stat& s = StatOf(self);
  Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return nullptr;
  const Py_ssize_t n = static_cast<Py_ssize_t>(s.rows.size());
  if (i < 0) i += n;
  if (i < 0 || i >= n) {
    return PyErr_Format(PyExc_IndexError, "get_row(%zd): the stat has %zd rows",
                        i, n);
  }
  int64_t cumul = 0;
  for (Py_ssize_t k = 0; k <= i; ++k) cumul += s.rows[k].size;
  return NewStatRow(s.rows[i], i, cumul);
}

// s.get_rows_of_kinds(kinds): for each kind name (unique), its row or None.
PyObject* StatGetRowsOfKinds(PyObject* self, PyObject* arg) {
  const Stat& s = StatOf(self);
  PyRef seq = PyRef::Steal(PySequence_Fast(
      arg, "get_rows_of_kinds() takes a sequence of kind names (str)"));
  if (!seq) return nullptr;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
  std::vector<std::string> kinds;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(seq.get(), i);
    std::string k;
    if (!NameArg(item, "get_rows_of_kinds()", &k, /*allow_empty=*/true)) {
      return nullptr;
    }
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) {
      return PyErr_Format(PyExc_ValueError,
                          "get_rows_of_kinds(): the kind %R is given twice",
                          item);
    }
    kinds.push_back(std::move(k));
  }
  PyRef list = PyRef::Steal(PyList_New(n));
  if (!list) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* r = nullptr;
    int64_t cumul = 0;
    for (size_t k = 0; k < s.rows.size(); ++k) {
      cumul += s.rows[k].size;
      if (s.rows[k].kind == kinds[i]) {
        r = NewStatRow(s.rows[k], static_cast<Py_ssize_t>(k), cumul);
        if (r == nullptr) return nullptr;
        break;
      }
    }
    PyList_SET_ITEM(list.get(), i, r != nullptr ? r : Py_NewRef(Py_None));
  }
  return list.release();
}

// s.get_rows_n_and_other(N, sortby='Size'): the N largest rows (by size, or
// by count with sortby='Count'), and when more rows are left one '<Other>'
// row with their totals, placed by that measure (Heapy's).
PyObject* StatGetRowsNAndOther(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"N", "sortby", nullptr};
  Py_ssize_t max_rows = 0;
  const char* sortby = "Size";
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|s:get_rows_n_and_other",
                                   const_cast<char**>(kw), &max_rows,
                                   &sortby)) {
    return nullptr;
  }
  const std::string by = sortby;
  if (by != "Size" && by != "Count") {
    PyErr_SetString(PyExc_ValueError,
                    "Argument 'sortby' must be 'Size' or 'Count'.");
    return nullptr;
  }
  if (max_rows < 0) {
    PyErr_SetString(PyExc_ValueError,
                    "get_rows_n_and_other(N): N must be >= 0");
    return nullptr;
  }
  const Stat& s = StatOf(self);
  struct Entry {
    size_t index;
    int64_t cumul;
  };
  std::vector<Entry> order;
  int64_t cumul = 0;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    cumul += s.rows[i].size;
    order.push_back({i, cumul});
  }
  const bool by_count = by == "Count";
  if (by_count) {
    std::stable_sort(order.begin(), order.end(),
                     [&s](const Entry& a, const Entry& b) {
                       return s.rows[a.index].count > s.rows[b.index].count;
                     });
  }
  const size_t n = std::min(order.size(), static_cast<size_t>(max_rows));
  std::vector<PyRef> out;
  int64_t kept_count = 0, kept_size = 0;
  for (size_t k = 0; k < n; ++k) {
    const StatRow& row = s.rows[order[k].index];
    kept_count += row.count;
    kept_size += row.size;
    PyRef r = PyRef::Steal(NewStatRow(
        row, static_cast<Py_ssize_t>(order[k].index), order[k].cumul));
    if (!r) return nullptr;
    out.push_back(std::move(r));
  }
  if (n < order.size()) {
    StatRow other{"<Other>", s.count - kept_count, s.size - kept_size};
    // Before the first kept row smaller than it, as Heapy places it.
    size_t at = n;
    for (size_t k = 0; k < n; ++k) {
      const StatRow& row = s.rows[order[k].index];
      if (by_count ? row.count < other.count : row.size < other.size) {
        at = k;
        break;
      }
    }
    PyRef r = PyRef::Steal(NewStatRow(other, -1, 0));
    if (!r) return nullptr;
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), std::move(r));
  }
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(out.size()));
  if (list == nullptr) return nullptr;
  for (size_t k = 0; k < out.size(); ++k) {
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(k), out[k].release());
  }
  return list;
}

PyObject* StatMore(PyObject* self, void*) {
  return FirstMore(*reinterpret_cast<StatObject*>(self)->stat);
}
PyObject* StatAll(PyObject* self, void*) {
  return NewText(Chomp(StatOf(self).Table(0, ~size_t{0}, true)));
}

PyObject* StatDump(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"dest", "mode", nullptr};
  PyObject* dest = nullptr;
  const char* mode = "a";
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|s:dump",
                                   const_cast<char**>(kw), &dest, &mode)) {
    return nullptr;
  }
  if (std::string(mode) != "a" && std::string(mode) != "w") {
    PyErr_Format(PyExc_ValueError,
                 "dump(): mode is 'a' (append, the default) or 'w' "
                 "(overwrite), not '%s'",
                 mode);
    return nullptr;
  }
  return WriteText(dest, StatOf(self).Record(), mode, "dump");
}

// The JSON export (docs/hp.md "JSON"), built as a dict and written by the
// annex's json module.
PyObject* StatJson(PyObject* self, PyObject*) {
  const Stat& s = StatOf(self);
  const bool diff = s.format == Stat::Format::kDiff;
  PyRef rows = PyRef::Steal(PyList_New(0));
  if (!rows) return nullptr;
  int64_t cum_count = 0, cum_size = 0;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const StatRow& r = s.rows[i];
    cum_count += r.count;
    cum_size += r.size;
    PyRef kind = PyRef::Steal(Str(r.kind));
    if (!kind) return nullptr;
    if (!ListAppendNew(
            rows.get(),
            Py_BuildValue("{snsOsLsLsLsL}", "index", static_cast<Py_ssize_t>(i),
                          "kind", kind.get(), "count",
                          static_cast<long long>(r.count), "size",
                          static_cast<long long>(r.size), "cumulative_count",
                          static_cast<long long>(cum_count), "cumulative_size",
                          static_cast<long long>(cum_size)))) {
      return nullptr;
    }
  }
  PyRef er = PyRef::Steal(Str(s.er));
  PyRef header = PyRef::Steal(Str(s.kind_header));
  if (!er || !header) return nullptr;
  PyRef doc = PyRef::Steal(Py_BuildValue(
      "{sssssOsOsdsLsL}", "schema", "annex.stat/1", "format",
      diff ? "diff" : "partition", "classifier", er.get(), "kind_header",
      header.get(), "time_made", static_cast<double>(s.time_made_us) / 1e6,
      "count", static_cast<long long>(s.count), "size",
      static_cast<long long>(s.size)));
  if (!doc) return nullptr;
  if (diff) {
    PyRef bc = PyRef::Steal(PyLong_FromLongLong(s.b_count));
    PyRef bs = PyRef::Steal(PyLong_FromLongLong(s.b_size));
    if (!bc || !bs ||
        PyDict_SetItemString(doc.get(), "b_count", bc.get()) < 0 ||
        PyDict_SetItemString(doc.get(), "b_size", bs.get()) < 0) {
      return nullptr;
    }
  }
  if (PyDict_SetItemString(doc.get(), "rows", rows.get()) < 0) return nullptr;
  PyRef json = PyRef::Steal(PyImport_ImportModule("json"));
  if (!json) return nullptr;
  return PyObject_CallMethod(json.get(), "dumps", "O", doc.get());
}

PyObject* StatToJson(PyObject* self, PyObject* dest) {
  PyRef text = PyRef::Steal(StatJson(self, nullptr));
  if (!text) return nullptr;
  std::string s;
  if (!Bytes(text.get(), &s)) return nullptr;
  return WriteText(dest, s + "\n", "w", "to_json");
}

PyGetSetDef kStatGetSet[] = {
    {"count", StatCount, nullptr, "number of objects (A-B: the difference)",
     nullptr},
    {"size", StatSize, nullptr, "total size in bytes (A-B: the difference)",
     nullptr},
    {"numrows", StatNumRows, nullptr, "number of rows (as len())", nullptr},
    {"kindheader", StatKindHeader, nullptr, "the kind column's header",
     nullptr},
    {"kindname", StatKindName, nullptr, "Heapy's kindname ('' for partitions)",
     nullptr},
    {"er", StatEr, nullptr, "the classifier's name, e.g. 'Clodo'", nullptr},
    {"format", StatFormat, nullptr, "'SetFormat' or 'DiffFormat' (A-B)",
     nullptr},
    {"timemade", StatTimeMade, nullptr, "when it was made (time.time())",
     nullptr},
    {"b_count", StatBCount, nullptr, "A-B: the count of B; else None", nullptr},
    {"b_size", StatBSize, nullptr, "A-B: the size of B; else None", nullptr},
    {"rows", StatRows, nullptr, "the rows as (kind, count, size) tuples",
     nullptr},
    {"fields", StatFields, nullptr,
     "the record's other fields as a dict (a heap record's labels: pid, "
     "host, program, python, rss, pause_us; docs/recording.md)",
     nullptr},
    {"firstheader", StatFirstHeader, nullptr,
     "Heapy's firstheader, a line before the table ('' here)", nullptr},
    {"more", StatMore, nullptr, "the next ten rows (and .more the next)",
     nullptr},
    {"all", StatAll, nullptr, "the whole table", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef kStatMethods[] = {
    {"dump",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(StatDump)),
     METH_VARARGS | METH_KEYWORDS,
     "dump(dest, mode='a'): appends the stat's text record to dest (a path, "
     "created with the process's permissions, or an open file); hp.load "
     "reads it back."},
    {"get_rows",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(StatGetRows)),
     METH_VARARGS | METH_KEYWORDS,
     "get_rows(idx=0) -> [StatRow]: the rows from idx on (name, count, size, "
     "index, cumulsize)."},
    {"get_row", StatGetRow, METH_O, "get_row(idx) -> StatRow: row idx."},
    {"get_rows_of_kinds", StatGetRowsOfKinds, METH_O,
     "get_rows_of_kinds(kinds) -> list: for each kind name, its StatRow or "
     "None."},
    {"get_rows_n_and_other",
     reinterpret_cast<PyCFunction>(
         reinterpret_cast<void (*)()>(StatGetRowsNAndOther)),
     METH_VARARGS | METH_KEYWORDS,
     "get_rows_n_and_other(N, sortby='Size') -> [StatRow]: the N largest "
     "rows by 'Size' or 'Count', and one '<Other>' row (index None) for the "
     "rest, placed by its size (count)."},
    {"json", StatJson, METH_NOARGS,
     "json() -> str: the stat as JSON (schema annex.stat/1, docs/hp.md)."},
    {"to_json", StatToJson, METH_O,
     "to_json(dest): writes json() to dest (a path, overwritten, or an open "
     "file)."},
    {nullptr, nullptr, 0, nullptr},
};

const TypeDef& StatDef() {
  static const TypeDef* def = new TypeDef(
      "annex.Stat",
      "The rows of a partition without its objects (Heapy's "
      "Stat): print it, stat[i], stat_a - stat_b, ==, "
      ".dump(path), .json().",
      sizeof(StatObject), AttributeTable(kStatGetSet, kStatMethods),
      {
          {Py_tp_repr, reinterpret_cast<void*>(StatRepr)},
          {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
          {Py_tp_richcompare, reinterpret_cast<void*>(StatRichCompare)},
          {Py_mp_length, reinterpret_cast<void*>(StatLen)},
          {Py_mp_subscript, reinterpret_cast<void*>(StatSubscript)},
          {Py_nb_subtract, reinterpret_cast<void*>(StatSub)},
      },
      InstanceDealloc<StatClear>);
  return *def;
}

// ------------------------------------------------------------- annex.More

void MoreClear(PyObject* self) {
  delete reinterpret_cast<MoreObject*>(self)->stat;
}

PyObject* MoreRepr(PyObject* self) {
  const MoreObject* m = reinterpret_cast<MoreObject*>(self);
  return Str(Chomp((*m->stat)->Table(static_cast<size_t>(m->first), kPageRows,
                                     /*label=*/false)));
}

PyObject* MoreMore(PyObject* self, void*) {
  const MoreObject* m = reinterpret_cast<MoreObject*>(self);
  return NewMore(*m->stat,
                 (*m->stat)->PageEnd(static_cast<size_t>(m->first), kPageRows));
}

PyObject* MoreAll(PyObject* self, void*) {
  const MoreObject* m = reinterpret_cast<MoreObject*>(self);
  return NewText(Chomp((*m->stat)->Table(0, ~size_t{0}, true)));
}

PyObject* MoreStat(PyObject* self, void*) {
  return NewStat(**reinterpret_cast<MoreObject*>(self)->stat);
}

PyGetSetDef kMoreGetSet[] = {
    {"more", MoreMore, nullptr, "the next ten rows", nullptr},
    {"all", MoreAll, nullptr, "the whole table", nullptr},
    {"stat", MoreStat, nullptr, "the stat being paged", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

const TypeDef& MoreDef() {
  static const TypeDef* def =
      new TypeDef("annex.More",
                  "A page of a table (Heapy's .more): shows ten rows; "
                  ".more is the next page, .all the whole table.",
                  sizeof(MoreObject), AttributeTable(kMoreGetSet, nullptr),
                  {
                      {Py_tp_repr, reinterpret_cast<void*>(MoreRepr)},
                  },
                  InstanceDealloc<MoreClear>);
  return *def;
}

}  // namespace

// NOLINTNEXTLINE(performance-unnecessary-value-param): moved into the Stat
PyObject* NewStat(Stat stat) {
  PyTypeObject* t = AnnexType(AnnexName::kStat);
  if (t == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(t, 0);
  if (obj == nullptr) return nullptr;
  reinterpret_cast<StatObject*>(obj)->stat =
      new StatPtr(std::make_shared<const Stat>(std::move(stat)));
  return obj;
}

PyObject* IdSetStat(PyObject* self) {
  return NewStat(SetOf(self).ToStat(NowMicros()));
}

PyObject* IdSetMore(PyObject* self) {
  return FirstMore(
      std::make_shared<const Stat>(SetOf(self).ToStat(NowMicros())));
}

PyObject* IdSetDump(PyObject* self, PyObject* args, PyObject* kwds) {
  PyRef stat = PyRef::Steal(IdSetStat(self));
  if (!stat) return nullptr;
  return StatDump(stat.get(), args, kwds);
}

PyObject* IdSetDiff(PyObject* self, PyObject* other) {
  KindedSet* b = IdSetArg(other);
  if (b == nullptr) return nullptr;
  const KindedSet& a = SetOf(self);
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  // Heapy's x.stat - y.by(x.er).stat.
  absl::StatusOr<KindedSet> by = view->Classify(*b, a.classifier);
  if (!by.ok()) return RaiseStatus(by.status());
  const int64_t now = NowMicros();
  absl::StatusOr<Stat> d = Stat::Diff(a.ToStat(now), by->ToStat(now), now);
  if (!d.ok()) return RaiseStatus(d.status());
  return NewStat(std::move(*d));
}

PyObject* HpLoad(PyObject* args, PyObject* kwds) {
  PyObject* source;
  int special;
  if (!LoadArgs(args, kwds, "O|$p:load", &source, &special)) return nullptr;
  // An open file: its next record, one per call.
  PyRef lines =
      PyRef::Steal(CallStatFiles("record_lines", Py_BuildValue("(O)", source)));
  if (!lines) return nullptr;
  if (lines.get() != Py_None) return LoadNextRecord(lines.get());
  std::unique_ptr<std::vector<Stat>> records =
      LoadRecords(source, /*last_only=*/true, special);
  if (records == nullptr) return nullptr;
  if (records->empty()) {
    PyErr_SetString(PyExc_ValueError,
                    "load(): no stat record found (empty input)");
    return nullptr;
  }
  return NewStat(std::move(records->back()));
}

PyObject* HpLoadAll(PyObject* args, PyObject* kwds) {
  PyObject* source;
  int special;
  if (!LoadArgs(args, kwds, "O|$p:loadall", &source, &special)) return nullptr;
  std::unique_ptr<std::vector<Stat>> records =
      LoadRecords(source, /*last_only=*/false, special);
  if (records == nullptr) return nullptr;
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (Stat& s : *records) {
    if (!ListAppendNew(list.get(), NewStat(std::move(s)))) return nullptr;
  }
  return list.release();
}

PyStructSequence_Field kStatRowFields[] = {
    {"name", "the kind"},
    {"count", "objects"},
    {"size", "bytes"},
    {"index", "the row's index in the stat (None for '<Other>')"},
    {"cumulsize",
     "bytes of this row and those before it (None for "
     "'<Other>')"},
    {nullptr, nullptr},
};
PyStructSequence_Desc kStatRowDesc = {
    "annex.StatRow", "A row of a Stat (Heapy's StatRow).", kStatRowFields, 5};

int AddStatTypes(PyObject* module) {
  if (AddStructSequence(module, "StatRow", &kStatRowDesc) == nullptr ||
      StatDef().AddTo(module, "Stat") == nullptr ||
      MoreDef().AddTo(module, "More") == nullptr) {
    return -1;
  }
  return AddStatFiles(module);
}

}  // namespace annex::glue::module
