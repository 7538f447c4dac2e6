// `hp`, the glue session's Python face inside the annex interpreter.
//
// Attribute access builds a service through the session on first use (as
// Heapy's glue model did); any other name raises AttributeError with the
// close names; dir(hp) and help(hp) list what exists.
//
//   >>> hp.threads()              # the target's threads, one line each
//   >>> print(hp.stacks())        # every target thread's Python stack
//   >>> hp.stdlib.json.dumps([1]) # the annex's own json module
//
// The object comes from Annex's own extension module `annex`, built into the
// binary and created with multi-phase initialization, so it is importable in
// a sub-interpreter and the annex imports nothing but the standard library
// from disk (docs/design.md rule 8).
#pragma once

#include <Python.h>

#include <memory>

#include "glue/heap_view.h"
#include "glue/session.h"

namespace annex::glue {

// A new `hp` object bound to `session` (which must outlive it; the annex
// ends before its session does). Creates and registers the `annex` module in
// the annex's sys.modules on first use. Returns a new reference, or nullptr
// with an exception set. Where: annex thread, GIL held, annex current.
PyObject* NewHp(Session* session);

// Acts for `hp` (an object NewHp made for `session`, e.g. a console
// client's; anything else, or nullptr, means the host) until the next
// call: the sets made from now on are charged to that hp in the session's
// MemoryBudget, and heap questions are asked under its pause limit
// (hp.pause_limit, else Options::question_pause_limit). Whoever runs a
// client's command calls it first. Where: annex thread, GIL held, annex
// current.
void ActFor(Session* session, PyObject* hp);
// The reference point set by `hp` (hp.setref()), or null when none is set
// or `hp` is not an hp object. Where: annex thread, GIL held, annex current.
std::shared_ptr<const ReferencePoint> HpReference(PyObject* hp);

}  // namespace annex::glue
