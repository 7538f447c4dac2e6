// What a table shows of one target object besides its kind and size
// (Heapy's "Name/Value/Address" column): the value of a str, bytes, int,
// float, complex, bool or None; the name of a module, function, class,
// method, built-in function or code object; the length of an exact
// built-in container. Everything is read from the object's fields in
// place: no object is made or released, no Python code runs, no error is
// set, so it may run inside a heap question with the target current.
//
//   ObjectText t = DescribeObject(obj);   // obj alive, GIL held
//   t.value;    // "'abc'", "12", "sys", "app.Cache.get", "app.py:3:f"
//   t.length;   // 3 for a list of 3, -1 for objects without one
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>

namespace annex::glue {

struct ObjectText {
  // The value or name; empty when the object has none to show.
  std::string value;
  // len() of an exact list, tuple, dict, set or frozenset; -1 otherwise.
  Py_ssize_t length = -1;
};

// Where: GIL held, `obj` alive (found by the current heap question's walk),
// any interpreter current. Values as Heapy renders them:
//   str, bytes   their repr, cut to about 60 characters ('abc...')
//   int          decimal (an int past 64 bits: "<int of N bits>")
//   float, complex, bool, None   their repr
//   module       its __name__ (read from its dict)
//   function     __module__.__qualname__ ("app.Cache.get")
//   class        its module and qualified name ("app.Cache"; built-in
//                types by tp_name: "int", "collections.OrderedDict")
//   method       <class of __self__ at 0x...>.name of the function
//   built-in function   module.name, or <type at 0x...>.name when bound
//   code         file name (no directory):first line:co_name ("app.py:3:f")
ObjectText DescribeObject(PyObject* obj);

// Heapy's rendering of one object in a brief: its value, else its address
// ("0x7f..."), with "*len" for a container ("0x7f...*3"). Any thread.
std::string BriefItem(uintptr_t address, const ObjectText& text);

}  // namespace annex::glue
