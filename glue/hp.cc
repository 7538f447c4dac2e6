// The `annex` extension module and its `hp` object.
#include "glue/hp.h"

#include <cstring>
#include <string>

#include "glue/annex_access.h"
#include "monitor/python/target_threads.h"

namespace annex::glue {
namespace {

struct HpObject {
  PyObject_HEAD
  Session* session;
};

constexpr const char* kHpDoc =
    "hp: the Annex session inside the annex interpreter.\n\n"
    "Services (built on first use):\n"
    "  hp.threads()   the target's threads, one line each\n"
    "  hp.stacks()    the Python stack of every target thread\n\n"
    "Any other name loads the standard-library module of that name in the\n"
    "annex, e.g. hp.gc, hp.json.";

AnnexAccess* Access(PyObject* self) {
  Session* session = reinterpret_cast<HpObject*>(self)->session;
  auto access = session->Get<AnnexAccess>();
  if (!access.ok()) {
    PyErr_SetString(PyExc_RuntimeError,
                    std::string(access.status().message()).c_str());
    return nullptr;
  }
  return *access;
}

// Where (all methods): annex thread, GIL held, annex current.
PyObject* HpThreads(PyObject* self, PyObject*) {
  AnnexAccess* a = Access(self);
  if (a == nullptr) return nullptr;
  std::string text = python::DescribeThreads(a->runtime().thread_states());
  return PyUnicode_FromStringAndSize(text.data(), text.size());
}

PyObject* HpStacks(PyObject* self, PyObject*) {
  AnnexAccess* a = Access(self);
  if (a == nullptr) return nullptr;
  std::string text = python::DescribeStacks(a->runtime().thread_states());
  return PyUnicode_FromStringAndSize(text.data(), text.size());
}

PyObject* HpGetattro(PyObject* self, PyObject* name) {
  PyObject* found = PyObject_GenericGetAttr(self, name);
  if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
    return found;
  }
  PyErr_Clear();
  const char* n = PyUnicode_AsUTF8(name);
  if (n == nullptr) return nullptr;
  if (n[0] == '_') {
    PyErr_Format(PyExc_AttributeError, "hp has no attribute '%s'", n);
    return nullptr;
  }
  // Not a service: the standard-library module of that name, in the annex.
  PyObject* module = PyImport_ImportModule(n);
  if (module == nullptr && PyErr_ExceptionMatches(PyExc_ImportError)) {
    PyErr_Clear();
    PyErr_Format(PyExc_AttributeError,
                 "hp has no service '%s' and there is no standard-library "
                 "module of that name (see dir(hp))",
                 n);
  }
  return module;
}

PyObject* HpDir(PyObject* self, PyObject*) {
  return Py_BuildValue("[ss]", "stacks", "threads");
}

PyObject* HpRepr(PyObject*) {
  return PyUnicode_FromString(
      "<hp: Annex session; dir(hp) lists services, help(hp) explains>");
}

PyMethodDef kHpMethods[] = {
    {"threads", HpThreads, METH_NOARGS,
     "threads() -> str: the target's threads (ident, native id, name, "
     "innermost frame)."},
    {"stacks", HpStacks, METH_NOARGS,
     "stacks() -> str: the Python stack of every target thread, most recent "
     "call last."},
    {"__dir__", HpDir, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot kHpSlots[] = {
    {Py_tp_doc, const_cast<char*>(kHpDoc)},
    {Py_tp_methods, kHpMethods},
    {Py_tp_getattro, reinterpret_cast<void*>(HpGetattro)},
    {Py_tp_repr, reinterpret_cast<void*>(HpRepr)},
    {0, nullptr},
};

PyType_Spec kHpSpec = {
    "annex.Hp", sizeof(HpObject), 0, Py_TPFLAGS_DEFAULT, kHpSlots,
};

// Module exec slot: one heap type per interpreter (multi-phase init).
int ModuleExec(PyObject* module) {
  PyObject* type = PyType_FromModuleAndSpec(module, &kHpSpec, nullptr);
  if (type == nullptr) return -1;
  // Instances are made only by NewHp(), never from Python.
  reinterpret_cast<PyTypeObject*>(type)->tp_new = nullptr;
  return PyModule_AddObject(module, "Hp", type) < 0 ? (Py_DECREF(type), -1) : 0;
}

PyModuleDef_Slot kModuleSlots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(ModuleExec)},
    {0, nullptr},
};

PyModuleDef kModuleDef = {
    PyModuleDef_HEAD_INIT, "annex",
    "Annex's own module in the annex interpreter (built into the binary).", 0,
    nullptr, kModuleSlots, nullptr, nullptr, nullptr,
};

// The `annex` module of the current interpreter, created on first use.
// Where: GIL held, annex current.
PyObject* AnnexModule() {
  PyObject* modules = PyImport_GetModuleDict();
  PyObject* module = PyDict_GetItemString(modules, "annex");
  if (module != nullptr) return Py_NewRef(module);
  PyObject* machinery = PyImport_ImportModule("importlib.machinery");
  if (machinery == nullptr) return nullptr;
  PyObject* spec = PyObject_CallMethod(machinery, "ModuleSpec", "sO", "annex",
                                       Py_None);
  Py_DECREF(machinery);
  if (spec == nullptr) return nullptr;
  module = PyModule_FromDefAndSpec(&kModuleDef, spec);
  Py_DECREF(spec);
  if (module == nullptr) return nullptr;
  if (PyModule_ExecDef(module, &kModuleDef) < 0 ||
      PyDict_SetItemString(modules, "annex", module) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

}  // namespace

PyObject* NewHp(Session* session) {
  PyObject* module = AnnexModule();
  if (module == nullptr) return nullptr;
  PyObject* type = PyObject_GetAttrString(module, "Hp");
  Py_DECREF(module);
  if (type == nullptr) return nullptr;
  PyObject* hp = PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(type), 0);
  Py_DECREF(type);
  if (hp == nullptr) return nullptr;
  reinterpret_cast<HpObject*>(hp)->session = session;
  return hp;
}

}  // namespace annex::glue
