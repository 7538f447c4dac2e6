#include "glue/object_text.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace annex::glue {
namespace {

// All: Where: GIL held, the objects alive; read in place (DescribeObject).

// Characters of a str or bytes value shown before it is cut with "...".
constexpr size_t kMaxChars = 57;
constexpr size_t kCutPast = 60;

void AppendUtf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// One character as repr() writes it inside `quote`s (quote 0: a name,
// only control characters escaped). `printable` for non-ASCII ones.
void AppendEscaped(uint32_t c, char quote, bool printable, std::string* out) {
  if (c == '\\' && quote != 0) {
    *out += "\\\\";
  } else if (quote != 0 && c == static_cast<uint32_t>(quote)) {
    *out += '\\';
    *out += quote;
  } else if (c == '\n') {
    *out += "\\n";
  } else if (c == '\r') {
    *out += "\\r";
  } else if (c == '\t') {
    *out += "\\t";
  } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !printable)) {
    if (c < 0x100) {
      absl::StrAppendFormat(out, "\\x%02x", c);
    } else if (c < 0x10000) {
      absl::StrAppendFormat(out, "\\u%04x", c);
    } else {
      absl::StrAppendFormat(out, "\\U%08x", c);
    }
  } else {
    AppendUtf8(c, out);
  }
}

// The characters of the str `s`, as its repr (`repr`) or as a name; cut
// past kCutPast characters. Read from its storage: no UTF-8 copy is made.
std::string StrText(PyObject* s, bool repr) {
  if (s == nullptr || !PyUnicode_Check(s)) return "";
#if PY_VERSION_HEX < 0x030C0000
  if (!PyUnicode_IS_READY(s)) return repr ? "<str>" : "";
#endif
  const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  const int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  char quote = 0;
  if (repr) {
    bool single = false, dbl = false;
    for (Py_ssize_t i = 0; i < n; ++i) {
      const Py_UCS4 c = PyUnicode_READ(kind, data, i);
      single |= c == '\'';
      dbl |= c == '"';
    }
    quote = single && !dbl ? '"' : '\'';
  }
  const bool cut = static_cast<size_t>(n) > kCutPast;
  const Py_ssize_t shown = cut ? static_cast<Py_ssize_t>(kMaxChars) : n;
  std::string out;
  if (quote != 0) out += quote;
  for (Py_ssize_t i = 0; i < shown; ++i) {
    const Py_UCS4 c = PyUnicode_READ(kind, data, i);
    AppendEscaped(c, quote, c < 0x80 || Py_UNICODE_ISPRINTABLE(c), &out);
  }
  if (cut) out += "...";
  if (quote != 0) out += quote;
  return out;
}

std::string BytesText(PyObject* b) {
  const Py_ssize_t n = PyBytes_GET_SIZE(b);
  const unsigned char* data =
      reinterpret_cast<const unsigned char*>(PyBytes_AS_STRING(b));
  bool single = false, dbl = false;
  for (Py_ssize_t i = 0; i < n; ++i) {
    single |= data[i] == '\'';
    dbl |= data[i] == '"';
  }
  const char quote = single && !dbl ? '"' : '\'';
  const bool cut = static_cast<size_t>(n) > kCutPast;
  const Py_ssize_t shown = cut ? static_cast<Py_ssize_t>(kMaxChars) : n;
  std::string out = "b";
  out += quote;
  for (Py_ssize_t i = 0; i < shown; ++i) {
    // Bytes past ASCII are never printable in a bytes repr.
    AppendEscaped(data[i], quote, false, &out);
  }
  if (cut) out += "...";
  out += quote;
  return out;
}

// A float as repr() writes it; `flags` Py_DTSF_*. The buffer CPython
// returns is raw memory, no object.
std::string DoubleText(double d, int flags) {
  char* s = PyOS_double_to_string(d, 'r', 0, flags, nullptr);
  if (s == nullptr) {
    PyErr_Clear();
    return "?";
  }
  std::string out = s;
  PyMem_Free(s);
  return out;
}

std::string IntText(PyObject* obj) {
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow == 0) return absl::StrCat(v);
  const size_t bits = _PyLong_NumBits(obj);
  if (bits == static_cast<size_t>(-1)) PyErr_Clear();
  return absl::StrCat("<", overflow < 0 ? "negative " : "", "int of ", bits,
                      " bits>");
}

std::string ComplexText(PyObject* obj) {
  const Py_complex c = reinterpret_cast<PyComplexObject*>(obj)->cval;
  if (c.real == 0.0 && !std::signbit(c.real)) {
    return DoubleText(c.imag, 0) + "j";
  }
  return absl::StrCat("(", DoubleText(c.real, 0),
                      DoubleText(c.imag, Py_DTSF_SIGN), "j)");
}

// The value stored under the str key `name` in the dict `dict`, found by
// comparing characters (no key object is made); nullptr when absent.
PyObject* DictStr(PyObject* dict, const char* name) {
  if (dict == nullptr || !PyDict_Check(dict)) return nullptr;
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (PyDict_Next(dict, &pos, &k, &v)) {
    if (PyUnicode_CheckExact(k) &&
        PyUnicode_CompareWithASCIIString(k, name) == 0) {
      return v;
    }
  }
  return nullptr;
}

// "module.name", or `name` alone when the module is unknown or builtins.
std::string Qualified(PyObject* module, const std::string& name) {
  const std::string m = StrText(module, false);
  if (m.empty() || m == "builtins") return name;
  return absl::StrCat(m, ".", name);
}

std::string TypeText(PyTypeObject* t) {
  if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    auto* heap = reinterpret_cast<PyHeapTypeObject*>(t);
    return Qualified(DictStr(t->tp_dict, "__module__"),
                     StrText(heap->ht_qualname, false));
  }
  return t->tp_name;
}

std::string Address(const void* p) {
  return absl::StrFormat("0x%x", reinterpret_cast<uintptr_t>(p));
}

// "<app.Cache at 0x...>.name": a bound callable's owner and name.
std::string BoundText(PyObject* self, const std::string& name) {
  return absl::StrCat("<", TypeText(Py_TYPE(self)), " at ", Address(self), ">.",
                      name);
}

std::string CallableName(PyObject* f) {
  if (PyFunction_Check(f)) {
    return StrText(reinterpret_cast<PyFunctionObject*>(f)->func_name, false);
  }
  if (PyCFunction_Check(f)) {
    return reinterpret_cast<PyCFunctionObject*>(f)->m_ml->ml_name;
  }
  return "?";
}

std::string CodeText(PyCodeObject* code) {
  std::string file = StrText(code->co_filename, false);
  const size_t slash = file.rfind('/');
  if (slash != std::string::npos) file = file.substr(slash + 1);
  return absl::StrCat(file, ":", code->co_firstlineno, ":",
                      StrText(code->co_name, false));
}

}  // namespace

ObjectText DescribeObject(PyObject* obj) {
  ObjectText t;
  if (PyUnicode_CheckExact(obj)) {
    t.value = StrText(obj, true);
  } else if (PyBytes_CheckExact(obj)) {
    t.value = BytesText(obj);
  } else if (PyBool_Check(obj)) {
    t.value = obj == Py_True ? "True" : "False";
  } else if (PyLong_CheckExact(obj)) {
    t.value = IntText(obj);
  } else if (PyFloat_CheckExact(obj)) {
    t.value = DoubleText(PyFloat_AS_DOUBLE(obj), Py_DTSF_ADD_DOT_0);
  } else if (PyComplex_CheckExact(obj)) {
    t.value = ComplexText(obj);
  } else if (obj == Py_None) {
    t.value = "None";
  } else if (PyModule_Check(obj)) {
    t.value = StrText(DictStr(PyModule_GetDict(obj), "__name__"), false);
  } else if (PyFunction_Check(obj)) {
    auto* f = reinterpret_cast<PyFunctionObject*>(obj);
    t.value = Qualified(f->func_module, StrText(f->func_qualname, false));
  } else if (PyType_Check(obj)) {
    t.value = TypeText(reinterpret_cast<PyTypeObject*>(obj));
  } else if (PyMethod_Check(obj)) {
    t.value = BoundText(PyMethod_GET_SELF(obj),
                        CallableName(PyMethod_GET_FUNCTION(obj)));
  } else if (PyCFunction_Check(obj)) {
    auto* f = reinterpret_cast<PyCFunctionObject*>(obj);
    const std::string name = f->m_ml->ml_name;
    t.value = f->m_self != nullptr && !PyModule_Check(f->m_self)
                  ? BoundText(f->m_self, name)
                  : Qualified(f->m_module, name);
  } else if (PyCode_Check(obj)) {
    t.value = CodeText(reinterpret_cast<PyCodeObject*>(obj));
  } else if (PyList_CheckExact(obj)) {
    t.length = PyList_GET_SIZE(obj);
  } else if (PyTuple_CheckExact(obj)) {
    t.length = PyTuple_GET_SIZE(obj);
  } else if (PyDict_CheckExact(obj)) {
    t.length = PyDict_GET_SIZE(obj);
  } else if (PySet_CheckExact(obj) || PyFrozenSet_CheckExact(obj)) {
    t.length = PySet_GET_SIZE(obj);
  }
  return t;
}

std::string BriefItem(uintptr_t address, const ObjectText& text) {
  if (!text.value.empty()) return text.value;
  std::string s = absl::StrFormat("0x%x", address);
  if (text.length >= 0) absl::StrAppend(&s, "*", text.length);
  return s;
}

}  // namespace annex::glue
