// x.partition: Heapy's Partition of a set (what x.stat and x.parts are made
// from), as annex.Partition: the rows of the set's table, each with its
// kind and the set of its members (annex.PartRow), the totals and the
// classifier, taken when the partition is made.
#include <Python.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"

namespace annex::glue::module {
namespace {

// Where (everything in this file): annex thread, GIL held, annex current.

struct PartitionObject {
  PyObject_HEAD PyObject* set;        // the annex.IdSet partitioned (held)
  std::vector<KindedSet::Row>* rows;  // as when made, largest first
  double timemade;                    // seconds since the epoch
};

PartitionObject* Part(PyObject* self) {
  return reinterpret_cast<PartitionObject*>(self);
}
const std::vector<KindedSet::Row>& RowsOf(PyObject* self) {
  return *Part(self)->rows;
}

// The members of row `i` now (members that died since are left out), with
// the set's classifier, as x[i].
PyObject* RowSet(PyObject* self, size_t i) {
  PyObject* set = Part(self)->set;
  return NewIdSet(IdSetSession(set),
                  SetOf(set).OfLabels({RowsOf(self)[i].label}));
}

// Row `i` as an annex.PartRow (Heapy's PartRow: name, count, size, index,
// cumulsize, set, kind).
PyObject* NewPartRow(PyObject* self, size_t i) {
  const std::vector<KindedSet::Row>& rows = RowsOf(self);
  uint64_t cumul = 0;
  for (size_t k = 0; k <= i; ++k) cumul += rows[k].size;
  PyTypeObject* type = AnnexType(AnnexName::kPartRow);
  if (type == nullptr) return nullptr;
  PyRef row = PyRef::Steal(PyStructSequence_New(type));
  if (!row) return nullptr;
  PyObject* set = RowSet(self, i);
  // A row whose members all died since has no kind left: None.
  PyObject* kind = set == nullptr            ? nullptr
                   : SetOf(set).count() == 0 ? Py_NewRef(Py_None)
                                             : IdSetKindOf(set);
  PyObject* items[] = {
      PyUnicode_DecodeUTF8(rows[i].kind.data(),
                           static_cast<Py_ssize_t>(rows[i].kind.size()),
                           "surrogateescape"),
      PyLong_FromUnsignedLongLong(rows[i].count),
      PyLong_FromUnsignedLongLong(rows[i].size),
      PyLong_FromSize_t(i),
      PyLong_FromUnsignedLongLong(cumul),
      set,
      kind,
  };
  bool ok = true;
  for (size_t k = 0; k < 7; ++k) {
    ok &= items[k] != nullptr;
    PyStructSequence_SetItem(  // steals the item
        row.get(), static_cast<Py_ssize_t>(k),
        items[k] != nullptr ? items[k] : Py_NewRef(Py_None));
  }
  return ok ? row.release() : nullptr;
}

// An index into the rows (negative from the end); false with IndexError.
bool RowIndex(PyObject* self, Py_ssize_t i, size_t* out) {
  const Py_ssize_t n = static_cast<Py_ssize_t>(RowsOf(self).size());
  if (i < 0) i += n;
  if (i < 0 || i >= n) {
    PyErr_Format(PyExc_IndexError,
                 "Partition index out of range: the partition has %zd rows", n);
    return false;
  }
  *out = static_cast<size_t>(i);
  return true;
}

PyObject* PartitionGetRow(PyObject* self, PyObject* arg) {
  Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return nullptr;
  size_t k = 0;
  if (!RowIndex(self, i, &k)) return nullptr;
  return NewPartRow(self, k);
}

// The rows from `idx` on, as a list (Heapy's is a generator).
PyObject* PartitionGetRows(PyObject* self, PyObject* args, PyObject* kwds) {
  static const char* kw[] = {"idx", nullptr};
  Py_ssize_t idx = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:get_rows",
                                   const_cast<char**>(kw), &idx)) {
    return nullptr;
  }
  const size_t n = RowsOf(self).size();
  if (idx < 0) idx = 0;
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (size_t i = static_cast<size_t>(idx); i < n; ++i) {
    if (!ListAppendNew(list.get(), NewPartRow(self, i))) return nullptr;
  }
  return list.release();
}

PyObject* PartitionRows(PyObject* self, void*) {
  PyRef args = PyRef::Steal(PyTuple_New(0));
  if (!args) return nullptr;
  return PartitionGetRows(self, args.get(), nullptr);
}

// get_set(i): row i's members; get_set(a:b) those of rows a..b, as x[i] and
// x[a:b] (the classifier kept).
PyObject* PartitionGetSet(PyObject* self, PyObject* key) {
  return IdSetSubscript(Part(self)->set, key);
}

// The rows' sets in order (Heapy's get_sets; x.parts).
PyObject* PartitionGetSets(PyObject* self, PyObject*) {
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (size_t i = 0; i < RowsOf(self).size(); ++i) {
    if (!ListAppendNew(list.get(), RowSet(self, i))) return nullptr;
  }
  return list.release();
}

PyObject* PartitionIter(PyObject* self) {
  PyRef sets = PyRef::Steal(PartitionGetSets(self, nullptr));
  if (!sets) return nullptr;
  return PyObject_GetIter(sets.get());
}

PyObject* PartitionGetStat(PyObject* self, PyObject*) {
  return IdSetStat(Part(self)->set);
}

Py_ssize_t PartitionLen(PyObject* self) {
  return static_cast<Py_ssize_t>(RowsOf(self).size());
}

PyObject* PartitionRepr(PyObject* self) {
  return PyObject_Repr(Part(self)->set);
}

PyObject* PartitionSet(PyObject* self, void*) {
  return Py_NewRef(Part(self)->set);
}
// The classifier object, as the set's `er` (hp.Clodo, (hp.Type & hp.Size)).
PyObject* PartitionEr(PyObject* self, void*) {
  return PyObject_GetAttrString(Part(self)->set, "er");
}
PyObject* PartitionKindHeader(PyObject* self, void*) {
  return PyUnicode_FromString(
      SetOf(Part(self)->set).classifier.Header().c_str());
}
PyObject* PartitionKindName(PyObject*, void*) {
  return PyUnicode_FromString("");
}
PyObject* PartitionCount(PyObject* self, void*) {
  uint64_t n = 0;
  for (const KindedSet::Row& r : RowsOf(self)) n += r.count;
  return PyLong_FromUnsignedLongLong(n);
}
PyObject* PartitionSize(PyObject* self, void*) {
  uint64_t n = 0;
  for (const KindedSet::Row& r : RowsOf(self)) n += r.size;
  return PyLong_FromUnsignedLongLong(n);
}
PyObject* PartitionNumRows(PyObject* self, void*) {
  return PyLong_FromSize_t(RowsOf(self).size());
}
PyObject* PartitionTimeMade(PyObject* self, void*) {
  return PyFloat_FromDouble(Part(self)->timemade);
}

void PartitionClear(PyObject* self) {
  Py_XDECREF(Part(self)->set);
  delete Part(self)->rows;
}

PyMethodDef kPartitionMethods[] = {
    {"get_row", PartitionGetRow, METH_O,
     "get_row(i) -> PartRow: row i (name, count, size, index, cumulsize, "
     "set, kind)"},
    {"get_rows",
     reinterpret_cast<PyCFunction>(
         reinterpret_cast<void (*)()>(PartitionGetRows)),
     METH_VARARGS | METH_KEYWORDS,
     "get_rows(idx=0) -> [PartRow]: the rows from idx on"},
    {"get_set", PartitionGetSet, METH_O,
     "get_set(i or a:b) -> IdSet: the members of row i / rows a..b"},
    {"get_sets", PartitionGetSets, METH_NOARGS,
     "get_sets() -> [IdSet]: each row's members, in order"},
    {"get_stat", PartitionGetStat, METH_NOARGS,
     "get_stat() -> Stat: the rows without the objects (x.stat)"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kPartitionGetSet[] = {
    {"set", PartitionSet, nullptr, "the set partitioned", nullptr},
    {"er", PartitionEr, nullptr,
     "the classifier (hp.Clodo, (hp.Type & hp.Size)); .name its name", nullptr},
    {"kindheader", PartitionKindHeader, nullptr, "the kind column's header",
     nullptr},
    {"kindname", PartitionKindName, nullptr, "Heapy's kindname ('')", nullptr},
    {"count", PartitionCount, nullptr, "objects in the rows", nullptr},
    {"size", PartitionSize, nullptr, "bytes in the rows", nullptr},
    {"numrows", PartitionNumRows, nullptr, "rows (also len(p))", nullptr},
    {"rows", PartitionRows, nullptr, "every row, as PartRows", nullptr},
    {"timemade", PartitionTimeMade, nullptr,
     "when it was made (seconds since the epoch)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

const TypeDef& PartitionDef() {
  static const TypeDef* def = new TypeDef(
      "annex.Partition",
      "Heapy's Partition of a set: its rows (kind, count, size) as when "
      "made, each with its members' set; iterates over the rows' sets.",
      sizeof(PartitionObject),
      AttributeTable(kPartitionGetSet, kPartitionMethods),
      {
          {Py_tp_repr, reinterpret_cast<void*>(PartitionRepr)},
          {Py_tp_iter, reinterpret_cast<void*>(PartitionIter)},
          {Py_sq_length, reinterpret_cast<void*>(PartitionLen)},
      },
      InstanceDealloc<PartitionClear>);
  return *def;
}

PyStructSequence_Field kPartRowFields[] = {
    {"name", "the kind, as the table shows it"},
    {"count", "objects"},
    {"size", "bytes"},
    {"index", "the row's index"},
    {"cumulsize", "bytes of this row and those before it"},
    {"set",
     "the row's members (an IdSet; members that died since are left "
     "out)"},
    {"kind", "the row's kind (an annex.Kind)"},
    {nullptr, nullptr},
};
PyStructSequence_Desc kPartRowDesc = {"annex.PartRow",
                                      "A row of a Partition (Heapy's PartRow).",
                                      kPartRowFields, 7};

}  // namespace

PyObject* IdSetPartition(PyObject* self) {
  PyTypeObject* type = AnnexType(AnnexName::kPartition);
  if (type == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(type, 0);
  if (obj == nullptr) return nullptr;
  Part(obj)->set = Py_NewRef(self);
  Part(obj)->rows = new std::vector<KindedSet::Row>(SetOf(self).Rows());
  Part(obj)->timemade = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  return obj;
}

int AddPartitionTypes(PyObject* module) {
  if (AddStructSequence(module, "PartRow", &kPartRowDesc) == nullptr ||
      PartitionDef().AddTo(module, "Partition") == nullptr) {
    return -1;
  }
  return 0;
}

}  // namespace annex::glue::module
