// The only place where Annex's code differs per CPython version (docs/design.md
// rule 11). Everything else calls these small functions and stays
// version-free. Supported: 3.11, 3.12, 3.13.
#pragma once

#include <Python.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace annex::python {

// The current thread state, or nullptr; never aborts. Caution: on 3.11 this
// is process-wide (whichever thread holds the GIL), on 3.12+ it is this
// thread's. Use it only on a thread that holds the GIL.
// Where: GIL held by the calling thread.
PyThreadState* CurrentThreadStateUnchecked();

// Whether the calling thread holds the GIL with a thread state of the main
// interpreter current. Exact on 3.12+ (thread-local current thread state);
// on 3.11 it compares the process-wide current thread state with this
// thread's own main-interpreter thread state, without dereferencing either.
// Not meaningful on the annex thread (which never needs it).
// Where: any thread but the annex thread, GIL not needed.
bool ThisThreadHoldsGil();

// OK when the running libpython is exactly the version (major.minor.micro,
// release level) of the headers this build was compiled against, and, on
// 3.13+, its _Py_DebugOffsets (cookie, version, the sizes and offsets of
// the structures Annex reads) match those headers; FailedPrecondition with
// both versions otherwise. Where: any thread, GIL not needed.
absl::Status CheckRuntimeVersion();

// Tests only: makes CheckRuntimeVersion() expect `version_hex` (a
// PY_VERSION_HEX value) instead of the headers' version; 0 restores it.
// Where: any thread.
void SetBuildVersionForTesting(unsigned long version_hex);

// "3.11.2" etc. of the running libpython. Where: any thread.
const char* RuntimeVersionString();

// Schedules `func(arg)` on the main interpreter's main thread at its next
// bytecode boundary (or in Py_FinalizeEx). Unlike Py_AddPendingCall, never
// targets another interpreter: on 3.11 Py_AddPendingCall picks the
// interpreter of whichever thread holds the GIL, so a call made while the
// annex runs lands in the annex's queue, where nothing ever runs it and its
// eval breaker stays set. Returns 0, or -1 when the queue is full.
// Where: any thread, GIL not needed, no thread state needed.
int AddPendingCallToMain(int (*func)(void*), void* arg);

// Whether the runtime is finalizing (Py_FinalizeEx has begun).
// Where: any thread, GIL not needed.
bool IsFinalizing();

// Creates a legacy sub-interpreter that shares the GIL and the allocator with
// the main interpreter (docs/design.md rule 1) and returns its thread state,
// now current; nullptr with no error set when CPython refused. Where: GIL held,
// called on the thread that will also end it.
PyThreadState* NewSharedGilInterpreter();

// What sys.getallocatedblocks() reports: the memory blocks pymalloc has
// handed out and not taken back, for the main interpreter and every one
// that shares its allocator (the annex does: NewSharedGilInterpreter).
// Each small object is one block, as are some objects' parts (an
// instance's values, a small list's items), and an object over 512 bytes
// is none: the target's object count, mostly from above, plus the
// annex's. -1 when it cannot be read. 3.11 reads it in C and creates
// nothing; 3.12+ calls the current interpreter's sys.getallocatedblocks
// (a builtin only) and so answers only while an interpreter other than
// the main one is current, whose int the result is. Where: GIL held, no
// exception pending (it leaves none: ScopedErrorPreserver around it keeps
// one).
int64_t AllocatedBlocks();

// Whether the target's tracemalloc traces now: a plain read of CPython's
// flag. While it does, 3.11's and 3.12's raw-allocator hook calls
// PyGILState_Ensure() on whichever thread allocates, so a thread that holds
// no GIL must not create a thread state then (PyThreadState_New allocates;
// seen as a crash inside it under ASan). 3.12+ only; on 3.11 (whose internal
// headers here are C only) annex_interpreter_creation_would_deadlock() in
// gilstate_bind.h reads the same flag. Where: any thread, GIL not needed.
bool TracemallocTracingNoGil();

// The lists os.register_at_fork appends to in `interp`'s state: before,
// after_in_parent, after_in_child (each null until first used). Borrowed.
// Where: GIL held, any interpreter current.
void ForkerLists(PyInterpreterState* interp, PyObject* lists[3]);
// Drops `interp`'s reference to list `i` of ForkerLists and sets it to null,
// as before the first os.register_at_fork. Where: GIL held.
void ClearForkerList(PyInterpreterState* interp, int i);

// --- Heap engine support (monitor/heap) ---

// Calls `visit(obj, arg)` for every object in the current interpreter's gc
// generations (what gc.get_objects() lists; the permanent generation of
// gc.freeze() is left out) until `visit` returns false. `visit` must not
// allocate Python objects or run Python code. FailedPrecondition when a
// collection is running (its lists are in flux).
// Where: GIL held, the interpreter to read is current.
absl::Status VisitGcTracked(bool (*visit)(PyObject* obj, void* arg), void* arg);

// Whether a gc collection runs in the current interpreter now. A collection
// moves what it examines to lists of its own, so the generation lists are
// whole only between collections; finalizers it runs (__del__, weakref
// callbacks) can release the GIL mid-collection. Where: GIL held, the
// interpreter to ask current.
bool GcCollecting();

// Visits the references a frame that is still executing (owned by its
// thread) holds but its tp_traverse leaves out: code, globals, builtins,
// f_locals, and the fast locals, cells and free variables. Value-stack
// temporaries are not visited (as neither gc.get_referents nor frame.f_locals
// sees them). A no-op for frames owned by a frame object or a generator,
// whose tp_traverse (or the generator's) covers them.
// Where: GIL held, the frame's interpreter current.
void VisitLiveFrameLocals(PyFrameObject* frame, visitproc visit, void* arg);

// One interpreter frame of a thread, read in place: no frame object and no
// f_locals dict is created to read it (roots and stack listings must not
// change the target, and materializing a frame object for a frame that is
// still being set up leaves a dangling frame object behind on 3.11).
// Every pointer is borrowed from the frame and valid while the GIL stays
// held.
struct FrameView {
  PyObject* frame_object = nullptr;  // the frame's object if one exists
  PyObject* code = nullptr;          // its code object, or nullptr
  PyObject* function = nullptr;      // the function it runs, or nullptr
  PyObject* globals = nullptr;
  PyObject* builtins = nullptr;
  PyObject* locals = nullptr;        // f_locals when one was built
  PyObject* const* slots = nullptr;  // fast locals, cells, free variables
  // Entries of `slots` (may be NULL); 0 for a frame whose locals were
  // released but which is still linked (a finished generator's, or one
  // being cleared while a finalizer runs): its slots hold stale pointers.
  int num_slots = 0;
  // False while the frame is in its prologue (CPython's "incomplete"
  // frames: arguments set, cells and free variables not yet): it has no
  // line yet and tracebacks skip it.
  bool complete = false;
  int line = 0;  // line of its current instruction; 0 when not complete
};

// Calls `fn` for each Python frame of `ts` from the innermost outwards
// until it returns false. Skipped: frames that only mark a C-stack entry
// (3.12+ "shim" frames) and 3.13's trampoline frames between a class call
// and its __init__ (no function; their globals and builtins fields are
// never written in a release build). Reads the frame chain in place and
// creates, runs and releases nothing: safe while other threads of the
// interpreter wait for the GIL at any point, including inside a frame's
// prologue. Where: GIL held continuously during the call; `ts` alive and of an
// interpreter sharing the GIL; any interpreter current.
void ForEachFrame(PyThreadState* ts,
                  absl::FunctionRef<bool(const FrameView&)> fn);

// The name (borrowed str) of slot `i` of `frame`, or nullptr; `*is_cell`
// is set when the slot is a cell or free variable holding a cell.
// Where: GIL held, as for ForEachFrame's callback.
PyObject* FrameViewSlotName(const FrameView& frame, int i, bool* is_cell);

// The name (borrowed str) of free variable `index` of code object `code`,
// as `code.co_freevars[index]`, read in place from the code's local names
// (CPython builds a new tuple for co_freevars on each call), or nullptr.
// Where: GIL held, any interpreter.
PyObject* CodeFreevarName(PyObject* code, Py_ssize_t index);

// Whether set or frozenset `set` has `member` (by identity), read in place:
// no iterator object is created. Where: GIL held, any interpreter.
bool SetHasMember(PyObject* set, PyObject* member);

// Borrowed references to a thread state's dict and pending asynchronous
// exception (either may be nullptr). Where: GIL held, `ts` in the current
// interpreter and alive.
PyObject* ThreadStateDict(PyThreadState* ts);
PyObject* ThreadStateAsyncExc(PyThreadState* ts);
unsigned long ThreadStateId(PyThreadState* ts);

// The bytes sys.getsizeof(obj) adds to obj.__sizeof__() in this version:
// the gc header and, on 3.11+, the managed dict / weakref pre-header; static
// type objects get none on 3.13. Reads only the type; runs no Python code.
// Where: GIL held, any interpreter.
size_t SizeofPreHeader(PyObject* obj);
// The same for any object of `tp` but 3.13's static type objects: the
// pre-header the type's flags call for. Reads only the type. Where: any
// thread; `tp` alive.
size_t SizeofTypePreHeader(PyTypeObject* tp);

// --- Edge naming support (monitor/heap/edge_names) ---
// These read object storage in place: they never create an f_locals dict
// or an instance dict, never run Python code and never set an error.

// The name (a borrowed str) of the first local, cell or free variable slot
// of `frame` whose stored object is `value`, or nullptr. The stored object
// is what the frame's traversal sees: for a cell or free variable that is
// the cell, and then `*is_cell` is set true. Frames whose storage is gone
// (a finished generator's, a cleared frame's) have no slots.
// Where: GIL held, any interpreter; `frame` alive.
PyObject* FrameSlotHolding(PyFrameObject* frame, PyObject* value,
                           bool* is_cell);

// The frame's f_locals dict as it stands (borrowed), or nullptr when none
// was ever built; never builds one. Where: GIL held; `frame` alive.
PyObject* FrameLocalsIfBuilt(PyFrameObject* frame);

// The instance dict object of `obj` when one exists (borrowed), or nullptr:
// a managed dict not yet materialized (3.11+ inline values) is not created.
// Where: GIL held, any interpreter; `obj` alive.
PyObject* ExistingInstanceDict(PyObject* obj);

// Whether instances of `type` may keep their attributes in a values block
// that sys.getsizeof does not count (InlineValuesBytes may be non-zero):
// 3.11/3.12 types with a managed dict, 3.13 types with inline values.
// Where: GIL held, any interpreter.
bool MayHaveInlineValues(PyTypeObject* type);

// The bytes of `obj`'s attribute values that sys.getsizeof(obj) leaves
// out, read in place (no dict is created): on 3.11/3.12 the values block
// allocated apart from the object while its attributes are inline (0 once
// a dict object exists: the dict's size covers them), its prefix included
// (the capacity is not stored: see version.cc); on 3.13 the inline values
// area allocated with the object itself (always there for such types).
// 0 for other objects. Where: GIL held, any interpreter; `obj` alive.
size_t InlineValuesBytes(PyObject* obj);

// The attribute name (a borrowed str) under which `obj` stores `value` in
// its inline values (3.11+ instances whose attributes live in the object,
// not in a dict object), or nullptr when it has none or none is `value`.
// Where: GIL held, any interpreter; `obj` alive.
PyObject* InlineAttributeHolding(PyObject* obj, PyObject* value);

// The value (borrowed) of `obj`'s inline attribute named `name` (an exact
// str), or nullptr when it has no inline values or no such attribute set.
// Compares names with PyUnicode_Compare: creates nothing, runs no code.
// Where: GIL held, any interpreter; `obj` alive.
PyObject* InlineAttributeNamed(PyObject* obj, PyObject* name);

// Whether tracemalloc traces now (process-wide). Asks without side effect
// (untracking nothing in a domain no one uses). Where: GIL held.
bool TracemallocIsTracing();

// The most recent frame of the traceback tracemalloc recorded for the
// memory block of `obj` (what tracemalloc.get_object_traceback(obj)[0]
// reports), read through the C API without running Python code; false when
// the block is not traced. Creates short-lived tuples in the current
// interpreter. Where: GIL held; `obj` alive.
bool TracemallocSite(PyObject* obj, std::string* filename, int* lineno);
// Every frame of that traceback, most recent first, as (filename, line):
// Heapy's x.prod. False (and none) when the block is not traced. Creates
// short-lived tuples in the current interpreter. Where: as TracemallocSite.
bool TracemallocFrames(PyObject* obj,
                       std::vector<std::pair<std::string, int>>* frames);

// --- Extra referents: references tp_traverse does not report (issue 12) ---
// gc.get_referents sees only what a type's tp_traverse reports, and
// non-GC containers report nothing. These functions visit the rest, read
// in place: they create nothing, run no Python code and set no error.
// Borrowed references (weak reference lists, a type's tp_weaklist) are not
// visited: they keep nothing alive.

// Visits the references of `obj` that its tp_traverse leaves out (or that
// a type without tp_traverse holds):
//   code objects: co_consts, co_names, co_exceptiontable,
//     co_localsplusnames, co_localspluskinds, co_filename, co_name,
//     co_qualname, co_linetable, and the cached co_code / co_varnames /
//     co_cellvars / co_freevars objects (3.11: _co_code; 3.12+: _co_cached);
//   type objects: static types their dict (3.12+: a static builtin type's
//     dict and subclass dict live in the interpreter's state; the current
//     interpreter's are read), __mro__, __bases__, __base__, tp_cache and,
//     on 3.12+ for a static builtin type, the interpreter's subclass dict
//     (other static types' subclass dicts are shared by all interpreters,
//     the annex's subclasses included, and are not followed); heap types
//     what type_traverse leaves out:
//     __name__, __qualname__, the __slots__ tuple, the subclass dict and
//     the str keys of the instances' shared keys (ht_cached_keys);
//   descriptors (method, classmethod, member, getset, slot wrapper): their
//     name and the cached qualified name;
//   modules: md_name; range objects: start, stop, step, length;
//   3.13 instances with inline values: the __dict__ made for them while
//     the values are still inline (tp_traverse visits only the values).
using ExtraReferentsFn = void (*)(PyObject* obj, visitproc visit, void* arg);

// The extra-referents function for instances of `type`, or nullptr when
// its instances hold nothing beyond what tp_traverse reports (most types:
// the walk then pays nothing). Where: GIL held, any interpreter.
ExtraReferentsFn ExtraReferentsFor(PyTypeObject* type);

// The part of the extra referents that no Python attribute exposes (so a
// Python-level oracle cannot read it): a code object's co_localsplusnames,
// co_localspluskinds and cached fields, a type's subclass dict (as above)
// and, for a heap type, its __slots__ tuple (ht_slots) and shared-key
// names, a descriptor's cached qualified
// name (reading __qualname__ would create it), a module's md_name, a
// range's length, and on 3.13 an instance's __dict__ that shares its inline
// values (reading __dict__ would make one when there is none). Where: GIL
// held, the interpreter owning `obj` current.
void VisitUnexposedReferents(PyObject* obj, visitproc visit, void* arg);

// The dict of `type` (its tp_dict; for a static builtin type on 3.12+ the
// current interpreter's), borrowed, or nullptr. Where: GIL held.
PyObject* TypeDictBorrowed(PyTypeObject* type);

}  // namespace annex::python
