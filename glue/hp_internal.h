// Private to glue/hp*.cc: what the parts of the `annex` module share, so
// each concern (retention, classifiers, ...) lives in its own source file
// and registers itself on the IdSet type from hp.cc's module exec.
#pragma once

#include <Python.h>

#include <string>

#include "absl/status/status.h"
#include "glue/heap_view.h"
#include "glue/session.h"

namespace annex::glue::hp_internal {

// All: Where: annex thread, GIL held, annex current.

// The contents of an annex.IdSet (owned by it), or nullptr with TypeError
// set when `obj` is not one.
KindedSet *IdSetContents(PyObject *obj);
// The session of an annex.IdSet (unchecked).
Session *IdSetSession(PyObject *idset);
// A new annex.IdSet / annex.Text (new references, or nullptr with an error).
PyObject *MakeIdSet(Session *session, KindedSet set);
PyObject *MakeText(const std::string &text);
// Raises RuntimeError (ValueError for InvalidArgument) with the status's
// message; returns nullptr.
PyObject *SetStatusError(const absl::Status &status);

// hp_retention.cc: adds x.sp, x.referrers, ... to the IdSet type and the
// Paths type to `module`. 0, or -1 with an error set. Where: module exec.
int AddRetention(PyObject *module, PyTypeObject *idset);

} // namespace annex::glue::hp_internal
