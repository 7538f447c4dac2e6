// hp's values surface on IdSet, as Heapy's (guppy3): x.brief, x.theone,
// x.byid (an annex.ById table whose rows are one-object sets), x.maprox
// (annex.MappingProxy: attributes and items of the members, read in the
// target as hp.iso('expr') reads) and x.prod (the allocation traceback of
// a one-object set). Values and names are read from the objects' fields
// inside one heap question (object_text.h): nothing is created in the
// target and no target code runs. The Python classes are in
// python/values.py, compiled into the binary.
#include <Python.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glue/heap_view.h"
#include "glue/module/hp_internal.h"
#include "glue/object_text.h"
#include "monitor/python/version.h"

namespace annex::glue::module {
namespace {

// All functions here: Where: annex thread, GIL held, annex current.

// Heapy's max_summary_length, and how much of it one kind's objects get.
constexpr size_t kBriefMax = 80;
constexpr size_t kRenderedMax = 50;
// Objects read per kind for a brief (each shows in at least 3 characters).
constexpr size_t kBriefPerKind = kRenderedMax / 3 + 1;

// A list of the strs `items` (new reference), or nullptr with the error.
PyObject* StrList(const std::vector<std::string>& items) {
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (const std::string& item : items) {
    if (!ListAppendNew(list.get(),
                       PyUnicode_FromStringAndSize(item.data(), item.size()))) {
      return nullptr;
    }
  }
  return list.release();
}

// Heapy's brief: "<N kind: item, item...>", or for several kinds
// "<N (k1 | k2): <n1 k1: items> | <n2 k2: items>>", at most 80 characters;
// an item is an object's value or name, else its address (object_text.h).
PyObject* Brief(PyObject* self, void*) {
  const KindedSet& set = SetOf(self);
  if (set.count() == 0) return PyUnicode_FromString("<Nothing>");
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  std::vector<KindedSet::Row> rows = set.Rows();
  std::vector<size_t> per_label(set.LabelNames().size());
  auto texts = view->ReadTexts(set, [&](size_t i) {
    return per_label[set.LabelOf(i)]++ < kBriefPerKind;
  });
  if (!texts.ok()) return RaiseStatus(texts.status());
  // The items of each kind, in address order; members no longer alive
  // show their address.
  std::vector<std::vector<std::string>> items(per_label.size());
  size_t k = 0;
  std::fill(per_label.begin(), per_label.end(), 0);
  for (size_t i = 0; i < set.count(); ++i) {
    const uint32_t label = set.LabelOf(i);
    if (per_label[label]++ >= kBriefPerKind) continue;
    while (k < texts->texts.size() && texts->texts[k].first < i) ++k;
    const bool have = k < texts->texts.size() && texts->texts[k].first == i;
    items[label].push_back(BriefItem(
        set.addresses[i], have ? texts->texts[k].second : ObjectText()));
  }
  // One kind's items within `room` characters, sorted, "..." when cut.
  auto rendered = [&](uint32_t label, size_t room) {
    std::vector<std::string> shown;
    size_t used = 0;
    const std::vector<std::string>& all = items[label];
    for (size_t j = 0; j < all.size(); ++j) {
      if (used > 0 && used + all[j].size() + 2 >= room) {
        shown.back() += "...";
        break;
      }
      used += all[j].size() + 2;
      shown.push_back(all[j]);
    }
    if (shown.size() == all.size() && all.size() < rows[0].count &&
        rows.size() == 1 && !shown.empty()) {
      shown.back() += "...";  // more objects than were read
    }
    std::sort(shown.begin(), shown.end());
    return absl::StrJoin(shown, ", ");
  };
  std::vector<std::string> kinds;
  kinds.reserve(rows.size());
  for (const auto& r : rows) kinds.push_back(r.kind);
  std::sort(kinds.begin(), kinds.end());
  std::string s;
  if (rows.size() == 1) {
    s = absl::StrCat("<", set.count(), " ", rows[0].kind, ": ");
    s += rendered(rows[0].label, kRenderedMax);
    s += ">";
  } else {
    s = absl::StrCat("<", set.count(), " (", absl::StrJoin(kinds, " | "),
                     "): ");
    std::vector<std::string> parts;
    size_t length = s.size();
    for (const auto& r : rows) {
      std::string part =
          absl::StrCat("<", r.count, " ", r.kind, ": ",
                       rendered(r.label, kBriefMax > length ? kBriefMax - length
                                                            : size_t{1}),
                       ">");
      length += part.size() + 3;
      parts.push_back(std::move(part));
      if (length > kBriefMax) break;
    }
    // Sorted by what follows the count, as Heapy's.
    std::sort(parts.begin(), parts.end(),
              [](const std::string& a, const std::string& b) {
                return a.substr(a.find(' ')) < b.substr(b.find(' '));
              });
    s += absl::StrJoin(parts, " | ") + ">";
  }
  if (s.size() > kBriefMax) s = s.substr(0, kBriefMax - 4) + "...>";
  return PyUnicode_FromStringAndSize(s.data(), s.size());
}

// x.byid: an annex.ById of the members alive now, its first page read.
PyObject* ById(PyObject* self, void*) {
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  auto result = view->ById(SetOf(self));
  if (!result.ok()) return RaiseStatus(result.status());
  PyRef lines = PyRef::Steal(StrList(result->lines));
  if (!lines) return nullptr;
  PyRef members =
      PyRef::Steal(NewIdSet(IdSetSession(self), std::move(result->live)));
  if (!members) return nullptr;
  PyObject* type = AnnexObject(AnnexName::kById);
  if (type == nullptr) return nullptr;
  return PyObject_CallFunction(type, "OO", members.get(), lines.get());
}

// x.theone: the line of the one member (Heapy's gives the object, which
// never reaches the annex).
PyObject* TheOne(PyObject* self, void*) {
  if (SetOf(self).count() != 1) {
    PyErr_SetString(PyExc_ValueError, "theone requires a singleton set");
    return nullptr;
  }
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  auto result = view->ById(SetOf(self), 1);
  if (!result.ok()) return RaiseStatus(result.status());
  if (result->lines.empty()) {
    PyErr_SetString(PyExc_ValueError,
                    "theone: the set's one member is no longer alive");
    return nullptr;
  }
  return NewText(result->lines[0]);
}

PyObject* Maprox(PyObject* self, void*) {
  PyObject* type = AnnexObject(AnnexName::kMappingProxy);
  if (type == nullptr) return nullptr;
  return PyObject_CallFunctionObjArgs(type, self, nullptr);
}

// x.prod: the traceback tracemalloc recorded for the allocation of the
// one member, most recent call first (Heapy's), as text.
PyObject* Prod(PyObject* self, void*) {
  const KindedSet& set = SetOf(self);
  if (set.count() != 1) {
    PyErr_SetString(PyExc_ValueError,
                    "prod requires a singleton set (x.byid[i].prod, "
                    "x.byprod for a set)");
    return nullptr;
  }
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  std::vector<std::pair<std::string, int>> frames;
  bool tracing = true;
  auto alive = view->ReadTexts(set, [&](size_t i) {
    // Inside the question, the member alive: read its traceback.
    tracing = python::TracemallocIsTracing();
    if (tracing) {
      python::TracemallocFrames(reinterpret_cast<PyObject*>(set.addresses[i]),
                                &frames);
    }
    return false;
  });
  if (!alive.ok()) return RaiseStatus(alive.status());
  if (!alive->alive[0]) {
    PyErr_SetString(PyExc_ValueError,
                    "prod: the set's one member is no longer alive");
    return nullptr;
  }
  if (!tracing) {
    PyErr_SetString(PyExc_RuntimeError,
                    "prod needs the target's tracemalloc: it is not tracing "
                    "now. Start it in the target (tracemalloc.start(), or "
                    "PYTHONTRACEMALLOC=1) before the objects of interest "
                    "are allocated.");
    return nullptr;
  }
  PyRef list = PyRef::Steal(PyList_New(0));
  if (!list) return nullptr;
  for (const auto& [file, line] : frames) {
    if (!ListAppendNew(
            list.get(),
            Py_BuildValue("(s#i)", file.data(),
                          static_cast<Py_ssize_t>(file.size()), line))) {
      return nullptr;
    }
  }
  PyObject* text = AnnexObject(AnnexName::kProdText);
  if (text == nullptr) return nullptr;
  return PyObject_CallFunctionObjArgs(text, list.get(), nullptr);
}

// The members' range (first, end) of x._byid_lines / x._members, within
// the set's count. false with TypeError set.
bool MemberRange(PyObject* args, const char* format, const KindedSet& set,
                 Py_ssize_t* first, Py_ssize_t* end) {
  if (!PyArg_ParseTuple(args, format, first, end)) return false;
  const Py_ssize_t n = static_cast<Py_ssize_t>(set.count());
  *first = std::clamp<Py_ssize_t>(*first, 0, n);
  *end = std::clamp<Py_ssize_t>(*end, *first, n);
  return true;
}

// x._byid_lines(first, end): the byid lines of members first..end-1.
PyObject* ByIdLines(PyObject* self, PyObject* args) {
  const KindedSet& set = SetOf(self);
  Py_ssize_t first = 0, end = 0;
  if (!MemberRange(args, "nn:_byid_lines", set, &first, &end)) return nullptr;
  HeapView* view = ViewOf(IdSetSession(self));
  if (view == nullptr) return nullptr;
  auto lines = view->ByIdLines(set, first, end);
  if (!lines.ok()) return RaiseStatus(lines.status());
  return StrList(*lines);
}

// x._members(start, stop): the members start..stop-1 (address order) as
// one IdSet, partitioned by Id.
PyObject* Members(PyObject* self, PyObject* args) {
  const KindedSet& set = SetOf(self);
  Py_ssize_t start = 0, stop = 0;
  if (!MemberRange(args, "nn:_members", set, &start, &stop)) return nullptr;
  std::vector<size_t> keep;
  for (Py_ssize_t i = start; i < stop; ++i) keep.push_back(i);
  KindedSet part = set.Subset(keep);
  part.classifier = set.classifier;
  return NewIdSet(IdSetSession(self), std::move(part));
}

PyGetSetDef kGetSet[] = {
    {"brief", Brief, nullptr,
     "a one-line summary: count, kinds and the members' values or names "
     "(Heapy's brief)",
     nullptr},
    {"theone", TheOne, nullptr,
     "the line of the one member of a one-object set (ValueError "
     "otherwise)",
     nullptr},
    {"byid", ById, nullptr,
     "the live members, one line each with the value or name (no target "
     "code); t[i] is member i as a set, t.more the next page",
     nullptr},
    {"maprox", Maprox, nullptr,
     "x.maprox.attr, x.maprox['key'], x.maprox('.a.b'): the objects those "
     "steps reach from each member, read in the target (Heapy's)",
     nullptr},
    {"prod", Prod, nullptr,
     "the allocation traceback of the one member (tracemalloc in the "
     "target)",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef kMethods[] = {
    {"_byid_lines", ByIdLines, METH_VARARGS,
     "_byid_lines(first, end): byid lines of those members (annex.ById)"},
    {"_members", Members, METH_VARARGS,
     "_members(start, stop): those members as a set (annex.ById)"},
    {"_maprox", HpMaprox, METH_O,
     "_maprox(steps): what the steps reach from each member (maprox)"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

AttributeTable ValuesAttributes() { return AttributeTable(kGetSet, kMethods); }

}  // namespace annex::glue::module
