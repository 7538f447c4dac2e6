// Test support: a tiny HeapGraph walked from given root objects with
// tp_traverse, for tests of edge naming and the retention facade. Not the
// heap engine's walk: no static-type special cases beyond skipping non-GC
// objects, dict keys added (tp_traverse of a str-keyed dict skips them),
// sizes from sys.getsizeof, and frames of live threads followed to
// their locals (which tp_traverse of an executing frame does not visit).
#pragma once

#include <Python.h>

#include <string>
#include <utility>
#include <vector>

#include "monitor/heap/graph.h"

namespace annex::heap::testing {

// Walks everything reachable from `roots` (name, object). The graph holds
// addresses only; the objects must stay alive (GIL held, no Python code run)
// while it is used. Cyclic GC is disabled during the walk.
// Where: GIL held, target interpreter current.
HeapGraph WalkFrom(const std::vector<std::pair<std::string, PyObject*>>& roots);

// The node of `object`, or -1. Pure C++.
int64_t NodeOf(const HeapGraph& graph, PyObject* object);

}  // namespace annex::heap::testing
