// Collecting the target's roots with the target current.
#include "monitor/heap/roots.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "monitor/heap/edge_names.h"
#include "monitor/python/version.h"

namespace annex::heap {

RootList& RootList::operator=(RootList&& other) noexcept {
  if (this != &other) {
    for (PyObject* o : objects_) Py_DECREF(o);
    names_ = std::move(other.names_);
    edges_ = std::move(other.edges_);
    uses_ = std::move(other.uses_);
    aliases_ = std::move(other.aliases_);
    objects_ = std::move(other.objects_);
    preferred_steps_ = std::move(other.preferred_steps_);
    other.preferred_steps_.clear();
    other.names_.clear();
    other.edges_.clear();
    other.uses_.clear();
    other.aliases_.clear();
    other.objects_.clear();
  }
  return *this;
}

RootList::~RootList() {
  for (PyObject* o : objects_) Py_DECREF(o);
}

void RootList::Add(std::string name, std::string edge, PyObject* object) {
  if (object == nullptr) return;
  Py_INCREF(object);
  names_.push_back(std::move(name));
  edges_.push_back(std::move(edge));
  uses_.push_back(RootUse::kStart);
  aliases_.emplace_back();
  objects_.push_back(object);
}

namespace {

// The references of one running frame, each a root named after the frame,
// with the edge names DescribeEdge gives for a frame object's references.
// Where: GIL held, inside ForEachFrame's callback.
void AddFrame(const std::string& name, const python::FrameView& f,
              RootList& roots) {
  roots.Add(name, f.frame_object);
  roots.Add(name, ".f_code", f.code);
  roots.Add(name, "<function>", f.function);
  roots.Add(name, ".f_globals", f.globals);
  roots.Add(name, ".f_builtins", f.builtins);
  roots.Add(name, ".f_locals", f.locals);
  for (int i = 0; i < f.num_slots; ++i) {
    PyObject* value = f.slots[i];
    if (value == nullptr) continue;
    bool is_cell = false;
    PyObject* slot_name = python::FrameViewSlotName(f, i, &is_cell);
    std::string edge;
    if (slot_name == nullptr) {
      edge = absl::StrCat("<local ", i, ">");
    } else {
      // Local names are identifiers: an ASCII one is its own repr between
      // quotes, read without creating the repr string in the target.
      const std::string key =
          PyUnicode_Check(slot_name) && PyUnicode_IS_ASCII(slot_name)
              ? absl::StrCat(
                    "'",
                    reinterpret_cast<const char*>(PyUnicode_DATA(slot_name)),
                    "'")
              : RenderKey(slot_name);
      edge = is_cell ? absl::StrCat("<cell of ", key, ">")
                     : absl::StrCat(".f_locals[", key, "]");
    }
    roots.Add(name, std::move(edge), value);
  }
}

// Sets the use of each frame root that holds what is not the frame's own
// (roots.h) and notes the preferred steps to each module and its dict.
// `modules` is sys.modules. Reads dicts in place (no code runs, nothing is
// created). Where: GIL held, target current.
void SetFrameRootUses(PyObject* modules, RootList& roots) {
  absl::flat_hash_map<PyObject*, std::string> spelled;
  // The roots that are a dict themselves (sys, builtins) first, then the
  // modules' dicts: sys.modules['builtins'].__dict__ is %R.builtins.
  for (size_t i = 0; i < roots.size(); ++i) {
    if (roots.edge(i).empty() && PyDict_CheckExact(roots.object(i)) &&
        roots.object(i) != modules) {
      spelled.try_emplace(roots.object(i),
                          FormatPath(Path{roots.name(i), {}, ""}));
    }
  }
  Py_ssize_t pos = 0;
  PyObject *key, *value;  // borrowed
  while (PyDict_Next(modules, &pos, &key, &value)) {
    if (!PyModule_Check(value)) continue;
    PyObject* dict = PyModule_GetDict(value);  // borrowed, no error
    if (dict == nullptr) continue;
    roots.AddPreferredStep(modules, value);
    roots.AddPreferredStep(value, dict);
    spelled.try_emplace(
        dict, absl::StrCat("%R.sys.modules[", RenderKey(key), "].__dict__"));
  }
  for (size_t i = 0; i < roots.size(); ++i) {
    const std::string& edge = roots.edge(i);
    const bool code = edge == "<function>" || edge == ".f_code";
    if (!code && edge != ".f_globals" && edge != ".f_locals" &&
        edge != ".f_builtins") {
      continue;
    }
    auto [it, first] = spelled.try_emplace(
        roots.object(i), FormatPath(Path{roots.name(i), {}, edge}));
    if (!first) {
      roots.SetUse(i, RootUse::kAlias, it->second);
    } else if (code) {
      roots.SetUse(i, RootUse::kFallback);
    }
  }
}

}  // namespace

absl::StatusOr<RootList> CollectRoots(
    const absl::flat_hash_set<PyThreadState*>& excluded) {
  PyThreadState* current = python::CurrentThreadStateUnchecked();
  if (current == nullptr) {
    return absl::FailedPreconditionError("no Python thread state is current");
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(current);
  RootList roots;
  PyObject* modules = PyImport_GetModuleDict();  // borrowed, current interp
  if (modules == nullptr || !PyDict_Check(modules)) {
    PyErr_Clear();
    return absl::FailedPreconditionError("sys.modules is gone");
  }
  roots.Add("sys.modules", modules);
  // Looked up in the dict directly (no import machinery, no code run).
  PyObject* sys = PyDict_GetItemString(modules, "sys");  // borrowed
  if (sys != nullptr && PyModule_Check(sys)) {
    roots.Add("sys", PyModule_GetDict(sys));
  }
  // With no frame running on the calling thread state this is the
  // interpreter's builtins dict.
  roots.Add("builtins", PyEval_GetBuiltins());
  PyErr_Clear();

  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (excluded.contains(t)) continue;
    const std::string prefix =
        absl::StrCat("thread ", python::ThreadStateId(t));
    int depth = 0;
    python::ForEachFrame(t, [&](const python::FrameView& f) {
      AddFrame(absl::StrCat(prefix, " frame ", depth++), f, roots);
      return true;
    });
    if (depth == 0) continue;  // idle or helper thread: skipped
    roots.Add(absl::StrCat(prefix, " dict"), python::ThreadStateDict(t));
    roots.Add(absl::StrCat(prefix, " async_exc"),
              python::ThreadStateAsyncExc(t));
  }
  SetFrameRootUses(modules, roots);
  return roots;
}

}  // namespace annex::heap
