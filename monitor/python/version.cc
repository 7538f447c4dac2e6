// Per-version CPython differences, behind small functions.
#include "monitor/python/version.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "monitor/python/debug_offsets.h"

// Internal CPython headers, read-only: the gc generation lists (3.11) and
// the layout of executing frames (all versions). HAVE_STD_ATOMIC is undefined
// so 3.12's pycore_atomic.h takes its GCC-builtin branch (C11 <stdatomic.h>
// does not exist in C++17); _PyGC_FINALIZED is redefined by pycore_gc.h.
#define Py_BUILD_CORE 1
#undef HAVE_STD_ATOMIC
#undef _PyGC_FINALIZED
#include "internal/pycore_code.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_frame.h"
// 3.11's pycore_object.h redeclares _PyObject_LookupSpecial, which
// cpython/object.h made a macro for the Id variant: undo the macro for it.
#undef _PyObject_LookupSpecial
#include "internal/pycore_gc.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_object.h"
#if PY_VERSION_HEX < 0x030C0000
#include "internal/pycore_pymem.h"  // _Py_GetAllocatedBlocks (exported)
#endif
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_runtime.h"
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_setobject.h"  // _PySet_NextEntry (exported)
#endif
#undef Py_BUILD_CORE

#if PY_VERSION_HEX < 0x030C0000
// Exported by libpython 3.11 (declared in its internal pycore_ceval.h).
extern "C" int _PyEval_AddPendingCall(PyInterpreterState* interp,
                                      int (*func)(void*), void* arg);
#endif

// tracemalloc_calls.c (C: 3.11's tracemalloc.h is not C++-linkable).
extern "C" int AnnexTracemallocUntrack(unsigned int domain, uintptr_t ptr);
extern "C" PyObject* AnnexTracemallocTraceback(uintptr_t ptr);

namespace annex::python {

int AddPendingCallToMain(int (*func)(void*), void* arg) {
#if PY_VERSION_HEX < 0x030C0000
  return _PyEval_AddPendingCall(PyInterpreterState_Main(), func, arg);
#else
  // 3.12+: Py_AddPendingCall always targets the main interpreter.
  return Py_AddPendingCall(func, arg);
#endif
}

PyThreadState* CurrentThreadStateUnchecked() {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

bool ThisThreadHoldsGil() {
#if PY_VERSION_HEX >= 0x030C0000
  return CurrentThreadStateUnchecked() != nullptr;
#else
  // 3.11 keeps the current thread state in one process-wide variable; the
  // per-thread record is the GILState thread-specific slot.
  PyThreadState* current = _PyThreadState_UncheckedGet();
  return current != nullptr && current == PyGILState_GetThisThreadState();
#endif
}

namespace {
// The version CheckRuntimeVersion() expects: the headers' (PY_VERSION_HEX),
// or what SetBuildVersionForTesting() pretends.
std::atomic<unsigned long> g_build_version{PY_VERSION_HEX};
}  // namespace

void SetBuildVersionForTesting(unsigned long version_hex) {
  g_build_version.store(version_hex == 0 ? PY_VERSION_HEX : version_hex);
}

absl::Status CheckRuntimeVersion() {
  static_assert(PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000,
                "Annex supports CPython 3.11 to 3.13");
  // Py_Version (3.11+) is the version of the libpython actually loaded.
  // Internal structure layouts may change between patch releases: the
  // major.minor.micro must be the headers' exactly (the release level and
  // serial too, for pre-releases).
  const unsigned long runtime = Py_Version;
  const unsigned long build = g_build_version.load();
  if (runtime != build) {
    char buf[400];
    std::snprintf(
        buf, sizeof buf,
        "Annex was built with the headers of Python %lu.%lu.%lu (0x%08lx) "
        "but runs on Python %lu.%lu.%lu (0x%08lx): CPython's internal "
        "structures, which Annex reads, may differ between releases; use "
        "an Annex built for Python %lu.%lu.%lu",
        build >> 24, (build >> 16) & 0xff, (build >> 8) & 0xff, build,
        runtime >> 24, (runtime >> 16) & 0xff, (runtime >> 8) & 0xff, runtime,
        runtime >> 24, (runtime >> 16) & 0xff, (runtime >> 8) & 0xff);
    return absl::FailedPreconditionError(buf);
  }
  // 3.13+: the layouts themselves, as the running Python describes them.
  char why[300];
  if (AnnexDebugOffsetsMismatch(build, why, sizeof why) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("Annex was built for Python ", PY_VERSION,
                     " but the running Python's structure layouts differ (",
                     why, "): use an Annex built for this Python"));
  }
  return absl::OkStatus();
}

bool IsFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

const char* RuntimeVersionString() { return Py_GetVersion(); }

bool TracemallocTracingNoGil() {
#if PY_VERSION_HEX >= 0x030C0000
  return _PyRuntime.tracemalloc.config.tracing != 0;
#else
  return false;  // 3.11's flag is read in C: gilstate_bind.c
#endif
}

void ForkerLists(PyInterpreterState* interp, PyObject* lists[3]) {
  lists[0] = interp->before_forkers;
  lists[1] = interp->after_forkers_parent;
  lists[2] = interp->after_forkers_child;
}

void ClearForkerList(PyInterpreterState* interp, int i) {
  PyObject** field = i == 0   ? &interp->before_forkers
                     : i == 1 ? &interp->after_forkers_parent
                              : &interp->after_forkers_child;
  Py_CLEAR(*field);
}

PyThreadState* NewSharedGilInterpreter() {
  // On 3.12+ Py_NewInterpreter() uses the legacy configuration: shared GIL,
  // main obmalloc, threads allowed, no multi-interpreter extension checks.
  // That is exactly what the annex needs; an isolated (own-GIL) interpreter
  // must never be used, since the annex touches the target's objects.
  PyThreadState* ts = Py_NewInterpreter();
  if (ts == nullptr) PyErr_Clear();
  return ts;
}

int64_t AllocatedBlocks() {
#if PY_VERSION_HEX < 0x030C0000
  // Runtime-wide on 3.11: one allocator state for every interpreter.
  return static_cast<int64_t>(_Py_GetAllocatedBlocks());
#else
  // Not exported on 3.12+: sys.getallocatedblocks is the way in. It sums
  // the main allocator's blocks and those of interpreters with their own.
  PyThreadState* ts = CurrentThreadStateUnchecked();
  if (ts == nullptr ||
      PyThreadState_GetInterpreter(ts) == PyInterpreterState_Main()) {
    return -1;  // its int would be the target's
  }
  int64_t blocks = -1;
  PyObject* fn = PySys_GetObject("getallocatedblocks");  // borrowed
  if (fn != nullptr && PyCFunction_Check(fn)) {
    if (PyObject* r = PyObject_CallNoArgs(fn)) {
      const long long n = PyLong_Check(r) ? PyLong_AsLongLong(r) : -1;
      Py_DECREF(r);
      if (n >= 0) blocks = n;
    }
  }
  PyErr_Clear();  // leaves none
  return blocks;
#endif
}

namespace {

#if PY_VERSION_HEX >= 0x030C0000
struct GcVisitClosure {
  bool (*visit)(PyObject*, void*);
  void* arg;
};

int GcVisitTrampoline(PyObject* obj, void* arg) {
  auto* c = static_cast<GcVisitClosure*>(arg);
  return c->visit(obj, c->arg) ? 1 : 0;
}
#endif

}  // namespace

bool GcCollecting() { return PyInterpreterState_Get()->gc.collecting != 0; }

absl::Status VisitGcTracked(bool (*visit)(PyObject* obj, void* arg),
                            void* arg) {
  PyInterpreterState* interp = PyInterpreterState_Get();
  if (interp->gc.collecting) {
    return absl::UnavailableError(
        "a gc collection is running in this interpreter");
  }
#if PY_VERSION_HEX >= 0x030C0000
  // Visits the current interpreter's generations 0..2.
  GcVisitClosure closure{visit, arg};
  PyUnstable_GC_VisitObjects(&GcVisitTrampoline, &closure);
#else
  for (int i = 0; i < NUM_GENERATIONS; ++i) {
    PyGC_Head* head = &interp->gc.generations[i].head;
    for (PyGC_Head* g = _PyGCHead_NEXT(head); g != head;
         g = _PyGCHead_NEXT(g)) {
      // The object follows its gc header directly.
      if (!visit(reinterpret_cast<PyObject*>(g + 1), arg)) {
        return absl::OkStatus();
      }
    }
  }
#endif
  return absl::OkStatus();
}

void VisitLiveFrameLocals(PyFrameObject* frame, visitproc visit, void* arg) {
  _PyInterpreterFrame* f = reinterpret_cast<struct _frame*>(frame)->f_frame;
  if (f == nullptr || (f->owner != FRAME_OWNED_BY_THREAD &&
                       f->owner != FRAME_OWNED_BY_GENERATOR)) {
    return;
  }
  // A finished generator's frame had its locals released without the
  // pointers being cleared, and a frame object can still point at it:
  // reading them would visit freed objects (seen on 3.12 and 3.13 with
  // CPython's own test suite running).
  if (f->owner == FRAME_OWNED_BY_GENERATOR &&
      _PyFrame_GetGenerator(f)->gi_frame_state >= FRAME_COMPLETED) {
    return;
  }
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* executable = f->f_executable;
#else
  PyObject* executable = reinterpret_cast<PyObject*>(f->f_code);
#endif
  PyObject* specials[] = {executable, f->f_globals, f->f_builtins, f->f_locals};
  for (PyObject* o : specials) {
    if (o != nullptr && visit(o, arg) != 0) return;
  }
  if (executable == nullptr || !PyCode_Check(executable)) return;
  // Locals, cells and free variables come first in localsplus and are NULL
  // until assigned; the value stack above them is left out.
  const int n = reinterpret_cast<PyCodeObject*>(executable)->co_nlocalsplus;
  for (int i = 0; i < n; ++i) {
    PyObject* o = f->localsplus[i];
    if (o != nullptr && visit(o, arg) != 0) return;
  }
}

namespace {

// The innermost interpreter frame of `ts`: 3.11/3.12 keep it in the C frame
// record the thread's eval loop is running (tstate->cframe), 3.13 in the
// thread state. Where: GIL held.
_PyInterpreterFrame* InnermostFrame(PyThreadState* ts) {
#if PY_VERSION_HEX >= 0x030D0000
  return ts->current_frame;
#else
  return ts->cframe != nullptr ? ts->cframe->current_frame : nullptr;
#endif
}

}  // namespace

void ForEachFrame(PyThreadState* ts,
                  absl::FunctionRef<bool(const FrameView&)> fn) {
  for (_PyInterpreterFrame* f = InnermostFrame(ts); f != nullptr;
       f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
    // A C-stack entry marker: its specials are not valid.
    if (f->owner == FRAME_OWNED_BY_CSTACK) continue;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    PyObject* executable = f->f_executable;
    PyObject* function = f->f_funcobj;
#elif PY_VERSION_HEX >= 0x030C0000
    PyObject* executable = reinterpret_cast<PyObject*>(f->f_code);
    PyObject* function = f->f_funcobj;
#else
    PyObject* executable = reinterpret_cast<PyObject*>(f->f_code);
    PyObject* function = reinterpret_cast<PyObject*>(f->f_func);
#endif
    // 3.13 frames whose executable is not a code object run no bytecode
    // of their own; nothing in them is a Python-level reference.
    if (executable == nullptr || !PyCode_Check(executable)) continue;
    // A trampoline frame: 3.13 pushes one running the static code object
    // _Py_InitCleanup between a class call and its Python __init__
    // (_PyFrame_PushTrampolineUnchecked). It has no function (f_funcobj is
    // None) and, in a release build, f_globals and f_builtins are never
    // written: they hold whatever an earlier frame left at that place of
    // the data stack. It holds no reference of the program's own (the
    // object being initialised is on its value stack, which is not read).
    // Reading its globals was the SIGSEGV under churn on 3.13 (issue 20).
    // Real frames of 3.11 to 3.13 always have their function.
    if (function == nullptr || !PyFunction_Check(function)) continue;
    auto* code = reinterpret_cast<PyCodeObject*>(executable);
    FrameView view;
    view.frame_object = reinterpret_cast<PyObject*>(f->frame_obj);
    view.code = executable;
    view.function = function;
    view.globals = f->f_globals;
    view.builtins = f->f_builtins;
    view.locals = f->f_locals;
    // Locals, cells and free variables lead localsplus and are NULL until
    // assigned, also in a frame's prologue; the value stack above them is
    // left out, as before (its top is not recorded while the frame runs).
    view.slots = f->localsplus;
    view.num_slots = code->co_nlocalsplus;
    // A frame whose locals were released keeps the stale pointers: a
    // finished generator's (its state says so), or one whose stacktop was
    // set to 0 as its slots are released. Its slots are not read. (A live
    // frame's stacktop is -1 while it runs, else at least co_nlocalsplus.)
    // A defensive check: no frame on a thread's chain was seen in this
    // state (the 3.13 crash first blamed on it was the trampoline above).
    if ((f->owner == FRAME_OWNED_BY_GENERATOR &&
         _PyFrame_GetGenerator(f)->gi_frame_state >= FRAME_COMPLETED) ||
        (f->stacktop == 0 && view.num_slots > 0)) {
      view.slots = nullptr;
      view.num_slots = 0;
    }
    view.complete = !_PyFrame_IsIncomplete(f);
    if (view.complete) {
      view.line =
          PyCode_Addr2Line(code, _PyInterpreterFrame_LASTI(f) *
                                     static_cast<int>(sizeof(_Py_CODEUNIT)));
    }
    if (!fn(view)) return;
  }
}

namespace {

// A code object's local names (a tuple) and their kinds (bytes, one per
// name), as far as both are there: the count is the shorter of the two.
// Where: GIL held.
struct LocalsPlus {
  PyObject* names = nullptr;
  const char* kinds = nullptr;
  Py_ssize_t count = 0;
};
bool ReadLocalsPlus(PyObject* code, LocalsPlus* out) {
  if (code == nullptr || !PyCode_Check(code)) return false;
  auto* co = reinterpret_cast<PyCodeObject*>(code);
  PyObject* names = co->co_localsplusnames;
  PyObject* kinds = co->co_localspluskinds;
  if (names == nullptr || !PyTuple_Check(names) || kinds == nullptr ||
      !PyBytes_Check(kinds)) {
    return false;
  }
  out->names = names;
  out->kinds = PyBytes_AS_STRING(kinds);
  out->count = std::min(PyTuple_GET_SIZE(names), PyBytes_GET_SIZE(kinds));
  return true;
}

}  // namespace

PyObject* FrameViewSlotName(const FrameView& frame, int i, bool* is_cell) {
  *is_cell = false;
  LocalsPlus locals;
  if (i < 0 || i >= frame.num_slots || !ReadLocalsPlus(frame.code, &locals) ||
      i >= locals.count) {
    return nullptr;
  }
  const auto kind = static_cast<unsigned char>(locals.kinds[i]);
  PyObject* value = frame.slots[i];
  *is_cell = (kind & (CO_FAST_CELL | CO_FAST_FREE)) != 0 && value != nullptr &&
             PyCell_Check(value);
  return PyTuple_GET_ITEM(locals.names, i);
}

// Free variables are the local names of kind CO_FAST_FREE, in order (the
// same in 3.11 to 3.13). Where: GIL held.
PyObject* CodeFreevarName(PyObject* code, Py_ssize_t index) {
  LocalsPlus locals;
  if (index < 0 || !ReadLocalsPlus(code, &locals)) return nullptr;
  for (Py_ssize_t i = 0; i < locals.count; ++i) {
    const auto kind = static_cast<unsigned char>(locals.kinds[i]);
    if ((kind & CO_FAST_FREE) != 0 && index-- == 0) {
      return PyTuple_GET_ITEM(locals.names, i);
    }
  }
  return nullptr;
}

// _PySet_NextEntry is exported by 3.11 to 3.13 (internal header on 3.13)
// and only reads the set's table. Where: GIL held.
bool SetHasMember(PyObject* set, PyObject* member) {
  if (set == nullptr || !PyAnySet_Check(set)) return false;
  Py_ssize_t pos = 0;
  PyObject* key = nullptr;
  Py_hash_t hash = 0;
  while (_PySet_NextEntry(set, &pos, &key, &hash)) {
    if (key == member) return true;
  }
  return false;
}

PyObject* ThreadStateDict(PyThreadState* ts) { return ts->dict; }

PyObject* ThreadStateAsyncExc(PyThreadState* ts) { return ts->async_exc; }

unsigned long ThreadStateId(PyThreadState* ts) { return ts->thread_id; }

size_t SizeofPreHeader(PyObject* obj) {
  PyTypeObject* tp = Py_TYPE(obj);
#if PY_VERSION_HEX >= 0x030D0000
  // 3.13's sys.getsizeof adds nothing for static type objects.
  if (tp == &PyType_Type &&
      !PyType_HasFeature(reinterpret_cast<PyTypeObject*>(obj),
                         Py_TPFLAGS_HEAPTYPE)) {
    return 0;
  }
#endif
  return SizeofTypePreHeader(tp);
}

size_t SizeofTypePreHeader(PyTypeObject* tp) {
#if PY_VERSION_HEX >= 0x030C0000
  const unsigned long pre_header =
      Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
#else
  const unsigned long pre_header = Py_TPFLAGS_MANAGED_DICT;
#endif
  size_t n = PyType_HasFeature(tp, Py_TPFLAGS_HAVE_GC) ? sizeof(PyGC_Head) : 0;
  if ((tp->tp_flags & pre_header) != 0) n += 2 * sizeof(PyObject*);
  return n;
}

namespace {

// The interpreter frame behind a frame object whose slots are still
// readable, or nullptr. Where: GIL held; `frame` alive.
_PyInterpreterFrame* ReadableFrame(PyFrameObject* frame) {
  _PyInterpreterFrame* f = reinterpret_cast<struct _frame*>(frame)->f_frame;
  if (f == nullptr) return nullptr;
  // As in VisitLiveFrameLocals: a finished generator's slots were released
  // without being cleared.
  if (f->owner == FRAME_OWNED_BY_GENERATOR &&
      _PyFrame_GetGenerator(f)->gi_frame_state >= FRAME_COMPLETED) {
    return nullptr;
  }
  return f;
}

PyObject* FrameExecutable(_PyInterpreterFrame* f) {
#if PY_VERSION_HEX >= 0x030D0000
  return f->f_executable;
#else
  return reinterpret_cast<PyObject*>(f->f_code);
#endif
}

// The shared keys of instances of `type` (heap types with managed dicts).
PyDictKeysObject* CachedKeys(PyTypeObject* type) {
  if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) return nullptr;
  return reinterpret_cast<PyHeapTypeObject*>(type)->ht_cached_keys;
}

// `obj`'s inline values and how many slots may be read, or nullptr.
PyDictValues* InlineValues(PyObject* obj, Py_ssize_t* count) {
  PyTypeObject* type = Py_TYPE(obj);
  if (!(type->tp_flags & Py_TPFLAGS_MANAGED_DICT)) return nullptr;
  PyDictKeysObject* keys = CachedKeys(type);
  if (keys == nullptr || keys->dk_kind == DICT_KEYS_GENERAL) return nullptr;
  *count = keys->dk_nentries;
#if PY_VERSION_HEX >= 0x030D0000
  if (!(type->tp_flags & Py_TPFLAGS_INLINE_VALUES)) return nullptr;
  PyDictValues* values = _PyObject_InlineValues(obj);
  if (!values->valid) return nullptr;
  if (*count > values->capacity) *count = values->capacity;
  return values;
#elif PY_VERSION_HEX >= 0x030C0000
  PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(obj);
  if (!_PyDictOrValues_IsValues(dorv)) return nullptr;
  return _PyDictOrValues_GetValues(dorv);
#else
  return *_PyObject_ValuesPointer(obj);
#endif
}

}  // namespace

PyObject* FrameSlotHolding(PyFrameObject* frame, PyObject* value,
                           bool* is_cell) {
  *is_cell = false;
  _PyInterpreterFrame* f = ReadableFrame(frame);
  if (f == nullptr) return nullptr;
  PyObject* executable = FrameExecutable(f);
  if (executable == nullptr || !PyCode_Check(executable)) return nullptr;
  auto* code = reinterpret_cast<PyCodeObject*>(executable);
  PyObject* names = code->co_localsplusnames;
  PyObject* kinds = code->co_localspluskinds;
  if (names == nullptr || !PyTuple_Check(names) || kinds == nullptr ||
      !PyBytes_Check(kinds)) {
    return nullptr;
  }
  const int n = code->co_nlocalsplus;
  if (n > PyTuple_GET_SIZE(names) || n > PyBytes_GET_SIZE(kinds)) {
    return nullptr;
  }
  for (int i = 0; i < n; ++i) {
    if (f->localsplus[i] != value) continue;
    const unsigned char kind =
        static_cast<unsigned char>(PyBytes_AS_STRING(kinds)[i]);
    *is_cell =
        (kind & (CO_FAST_CELL | CO_FAST_FREE)) != 0 && PyCell_Check(value);
    return PyTuple_GET_ITEM(names, i);
  }
  return nullptr;
}

PyObject* FrameLocalsIfBuilt(PyFrameObject* frame) {
  _PyInterpreterFrame* f = reinterpret_cast<struct _frame*>(frame)->f_frame;
  return f == nullptr ? nullptr : f->f_locals;
}

PyObject* ExistingInstanceDict(PyObject* obj) {
  PyTypeObject* type = Py_TYPE(obj);
  if (type->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
#if PY_VERSION_HEX >= 0x030D0000
    return reinterpret_cast<PyObject*>(_PyObject_GetManagedDict(obj));
#elif PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(obj);
    return _PyDictOrValues_IsValues(dorv) ? nullptr
                                          : _PyDictOrValues_GetDict(dorv);
#else
    return *_PyObject_ManagedDictPointer(obj);
#endif
  }
  if (type->tp_dictoffset > 0) {
    return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj) +
                                         type->tp_dictoffset);
  }
  // A negative offset (variable-size objects) counts from the end; only
  // CPython's own _PyObject_GetDictPtr computes it, and it creates nothing.
  if (type->tp_dictoffset < 0) {
    PyObject** slot = _PyObject_GetDictPtr(obj);
    return slot == nullptr ? nullptr : *slot;
  }
  return nullptr;
}

bool MayHaveInlineValues(PyTypeObject* type) {
#if PY_VERSION_HEX >= 0x030D0000
  return (type->tp_flags & Py_TPFLAGS_INLINE_VALUES) != 0 &&
         CachedKeys(type) != nullptr;
#else
  return (type->tp_flags & Py_TPFLAGS_MANAGED_DICT) != 0;
#endif
}

size_t InlineValuesBytes(PyObject* obj) {
  PyTypeObject* type = Py_TYPE(obj);
#if PY_VERSION_HEX >= 0x030D0000
  // Inside the object's own allocation, after the header: a 4-byte header
  // padded to the first slot, `capacity` slots, then one insertion-order
  // byte per slot rounded up to whole words. The area is there whether or
  // not a dict was materialized since (it then may be invalid, not freed).
  if ((type->tp_flags & Py_TPFLAGS_INLINE_VALUES) == 0) return 0;
  const PyDictValues* values = _PyObject_InlineValues(obj);
  const size_t capacity = values->capacity;
  const size_t order = (capacity + sizeof(PyObject*) - 1) / sizeof(PyObject*) *
                       sizeof(PyObject*);
  return offsetof(PyDictValues, values) + capacity * sizeof(PyObject*) + order;
#else
  // A separate block while no dict object exists: a prefix (its length in
  // its last byte, just before the first slot: insertion order, used
  // count) and `capacity` slots. The capacity is not stored: it was the
  // class's shared keys' entries + usable count when the block was made,
  // a count that only shrinks (each new instance lowers it, down to the
  // number of attributes + 1). So it is that count now, kept within what
  // the prefix allows (prefix = capacity + 2 rounded up to words): exact
  // once a class has more than about 30 instances, at most 7 slots low for
  // the first ones.
  if ((type->tp_flags & Py_TPFLAGS_MANAGED_DICT) == 0) return 0;
#if PY_VERSION_HEX >= 0x030C0000
  PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(obj);
  if (!_PyDictOrValues_IsValues(dorv)) return 0;
  PyDictValues* values = _PyDictOrValues_GetValues(dorv);
#else
  PyDictValues* values = *_PyObject_ValuesPointer(obj);
#endif
  if (values == nullptr) return 0;
  const Py_ssize_t prefix = reinterpret_cast<const uint8_t*>(values)[-1];
  const Py_ssize_t most = prefix - 2;
  const Py_ssize_t least = prefix - 9 > 1 ? prefix - 9 : 1;
  Py_ssize_t capacity = most;
  PyDictKeysObject* keys = CachedKeys(type);
  if (keys != nullptr) {
    capacity = keys->dk_nentries + keys->dk_usable;
    if (capacity > most) capacity = most;
    if (capacity < least) capacity = least;
  }
  if (capacity < 1) return 0;  // not a values block as we know it
  return static_cast<size_t>(prefix) +
         static_cast<size_t>(capacity) * sizeof(PyObject*);
#endif
}

PyObject* InlineAttributeHolding(PyObject* obj, PyObject* value) {
  Py_ssize_t count = 0;
  PyDictValues* values = InlineValues(obj, &count);
  if (values == nullptr) return nullptr;
  PyDictUnicodeEntry* entries = DK_UNICODE_ENTRIES(CachedKeys(Py_TYPE(obj)));
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (values->values[i] == value) return entries[i].me_key;
  }
  return nullptr;
}

PyObject* InlineAttributeNamed(PyObject* obj, PyObject* name) {
  Py_ssize_t count = 0;
  PyDictValues* values = InlineValues(obj, &count);
  if (values == nullptr) return nullptr;
  PyDictUnicodeEntry* entries = DK_UNICODE_ENTRIES(CachedKeys(Py_TYPE(obj)));
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* key = entries[i].me_key;
    if (key != nullptr && PyUnicode_CheckExact(key) &&
        PyUnicode_Compare(key, name) == 0) {
      return values->values[i];
    }
  }
  return nullptr;
}

namespace {
// A tracemalloc domain no allocator uses ("ANNX"): untracking in it is a
// no-op that still reports whether tracemalloc traces.
constexpr unsigned int kProbeDomain = 0x414E4E58;
}  // namespace

bool TracemallocIsTracing() {
  return AnnexTracemallocUntrack(kProbeDomain, 0) != -2;
}

bool TracemallocFrames(PyObject* obj,
                       std::vector<std::pair<std::string, int>>* frames) {
  frames->clear();
  uintptr_t block = reinterpret_cast<uintptr_t>(obj) - SizeofPreHeader(obj);
  PyObject* tb = AnnexTracemallocTraceback(block);
  if (tb == nullptr) {
    PyErr_Clear();
    return false;
  }
  for (Py_ssize_t i = 0; PyTuple_Check(tb) && i < PyTuple_GET_SIZE(tb); ++i) {
    PyObject* frame = PyTuple_GET_ITEM(tb, i);
    if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(frame, 0))) {
      continue;
    }
    const char* f = PyUnicode_AsUTF8(PyTuple_GET_ITEM(frame, 0));
    long line = PyLong_AsLong(PyTuple_GET_ITEM(frame, 1));
    if (f != nullptr && !(line == -1 && PyErr_Occurred())) {
      frames->emplace_back(f, static_cast<int>(line));
    }
    PyErr_Clear();
  }
  Py_DECREF(tb);
  return !frames->empty();
}

bool TracemallocSite(PyObject* obj, std::string* filename, int* lineno) {
  std::vector<std::pair<std::string, int>> frames;
  if (!TracemallocFrames(obj, &frames)) return false;
  *filename = frames[0].first;
  *lineno = frames[0].second;
  return true;
}

// --- Extra referents (issue 12) ---

namespace {

#define ANNEX_VISIT(o)                                        \
  do {                                                        \
    PyObject* annex_visit_o = reinterpret_cast<PyObject*>(o); \
    if (annex_visit_o != nullptr) visit(annex_visit_o, arg);  \
  } while (0)

// Objects/rangeobject.c's layouts (private there), the same in 3.11 to
// 3.13; used only when the type's basic size agrees.
struct RangeLayout {
  PyObject_HEAD PyObject* start;
  PyObject* stop;
  PyObject* step;
  PyObject* length;
};
struct LongRangeIterLayout {
  PyObject_HEAD PyObject* start;
  PyObject* step;
  PyObject* len;
};

#if PY_VERSION_HEX >= 0x030D0000
using StaticTypeState = managed_static_type_state;
#elif PY_VERSION_HEX >= 0x030C0000
using StaticTypeState = static_builtin_state;
#endif

#if PY_VERSION_HEX >= 0x030C0000
// The current interpreter's state of a static builtin type (3.12+: its
// dict, subclass dict and weaklist live there, and tp_subclasses holds the
// index plus one), or nullptr. Checked against the state's own type
// pointer. Where: GIL held.
StaticTypeState* StaticBuiltinState(PyTypeObject* type) {
  if (!(type->tp_flags & _Py_TPFLAGS_STATIC_BUILTIN) ||
      (type->tp_flags & Py_TPFLAGS_HEAPTYPE) ||
      type->tp_subclasses == nullptr) {
    return nullptr;
  }
  const size_t index = reinterpret_cast<size_t>(type->tp_subclasses) - 1;
  PyInterpreterState* interp = PyInterpreterState_Get();
#if PY_VERSION_HEX >= 0x030D0000
  if (index < _Py_MAX_MANAGED_STATIC_BUILTIN_TYPES &&
      interp->types.builtins.initialized[index].type == type) {
    return &interp->types.builtins.initialized[index];
  }
  if (index < _Py_MAX_MANAGED_STATIC_EXT_TYPES &&
      interp->types.for_extensions.initialized[index].type == type) {
    return &interp->types.for_extensions.initialized[index];
  }
#else
  if (index < _Py_MAX_STATIC_BUILTIN_TYPES &&
      interp->types.builtins[index].type == type) {
    return &interp->types.builtins[index];
  }
#endif
  return nullptr;
}
#endif

// The subclass dict of `type` (borrowed) when it belongs to the current
// interpreter, or nullptr. A heap type's does; a static type's is shared by
// every interpreter of the process (it holds weak references to the
// annex's subclasses too, created by the annex), except that of a static
// builtin type on 3.12+, which lives in each interpreter's state.
// Where: GIL held.
PyObject* TypeSubclasses(PyTypeObject* type) {
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    return reinterpret_cast<PyObject*>(type->tp_subclasses);
  }
#if PY_VERSION_HEX >= 0x030C0000
  // The field is an index for a static builtin type, never an object.
  StaticTypeState* state = StaticBuiltinState(type);
  return state == nullptr ? nullptr : state->tp_subclasses;
#else
  return nullptr;
#endif
}

// The str keys of a heap type's shared instance keys (what instances with
// inline values or split dicts name their attributes by). Where: GIL held.
void VisitCachedKeys(PyTypeObject* type, visitproc visit, void* arg) {
  PyDictKeysObject* keys = CachedKeys(type);
  if (keys == nullptr || keys->dk_kind == DICT_KEYS_GENERAL) return;
  PyDictUnicodeEntry* entries = DK_UNICODE_ENTRIES(keys);
  for (Py_ssize_t i = 0; i < keys->dk_nentries; ++i) {
    ANNEX_VISIT(entries[i].me_key);
  }
}

void VisitCodeUnexposed(PyCodeObject* co, visitproc visit, void* arg) {
  ANNEX_VISIT(co->co_localsplusnames);
  ANNEX_VISIT(co->co_localspluskinds);
#if PY_VERSION_HEX >= 0x030C0000
  if (co->_co_cached != nullptr) {
    ANNEX_VISIT(co->_co_cached->_co_code);
    ANNEX_VISIT(co->_co_cached->_co_varnames);
    ANNEX_VISIT(co->_co_cached->_co_cellvars);
    ANNEX_VISIT(co->_co_cached->_co_freevars);
  }
#else
  ANNEX_VISIT(co->_co_code);
#endif
}

void CodeExtras(PyObject* obj, visitproc visit, void* arg) {
  auto* co = reinterpret_cast<PyCodeObject*>(obj);
  ANNEX_VISIT(co->co_consts);
  ANNEX_VISIT(co->co_names);
  ANNEX_VISIT(co->co_exceptiontable);
  ANNEX_VISIT(co->co_filename);
  ANNEX_VISIT(co->co_name);
  ANNEX_VISIT(co->co_qualname);
  ANNEX_VISIT(co->co_linetable);
  VisitCodeUnexposed(co, visit, arg);
}

void TypeUnexposed(PyTypeObject* type, visitproc visit, void* arg) {
  ANNEX_VISIT(TypeSubclasses(type));
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    ANNEX_VISIT(reinterpret_cast<PyHeapTypeObject*>(type)->ht_slots);
    VisitCachedKeys(type, visit, arg);
  }
}

void TypeExtras(PyObject* obj, visitproc visit, void* arg) {
  auto* type = reinterpret_cast<PyTypeObject*>(obj);
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    // type_traverse reports the dict, cache, MRO, bases, base and module.
    auto* heap = reinterpret_cast<PyHeapTypeObject*>(type);
    ANNEX_VISIT(heap->ht_name);
    ANNEX_VISIT(heap->ht_qualname);
  } else {
    // A static type is no GC object: nothing of it is reported.
    ANNEX_VISIT(TypeDictBorrowed(type));
    ANNEX_VISIT(type->tp_mro);
    ANNEX_VISIT(type->tp_bases);
    ANNEX_VISIT(type->tp_base);
    ANNEX_VISIT(type->tp_cache);
  }
  TypeUnexposed(type, visit, arg);
}

// descr_traverse reports d_type only.
void DescriptorExtras(PyObject* obj, visitproc visit, void* arg) {
  auto* d = reinterpret_cast<PyDescrObject*>(obj);
  ANNEX_VISIT(d->d_name);
  ANNEX_VISIT(d->d_qualname);
}

void ModuleExtras(PyObject* obj, visitproc visit, void* arg) {
  ANNEX_VISIT(reinterpret_cast<PyModuleObject*>(obj)->md_name);
}

void RangeExtras(PyObject* obj, visitproc visit, void* arg) {
  auto* r = reinterpret_cast<RangeLayout*>(obj);
  ANNEX_VISIT(r->start);
  ANNEX_VISIT(r->stop);
  ANNEX_VISIT(r->step);
  ANNEX_VISIT(r->length);
}

void LongRangeIterExtras(PyObject* obj, visitproc visit, void* arg) {
  auto* r = reinterpret_cast<LongRangeIterLayout*>(obj);
  ANNEX_VISIT(r->start);
  ANNEX_VISIT(r->step);
  ANNEX_VISIT(r->len);
}

#if PY_VERSION_HEX >= 0x030D0000
// 3.13: an instance whose attributes are inline and whose __dict__ was
// asked for (vars(obj), obj.__dict__) keeps both, the dict sharing the
// inline values; while those stay valid its tp_traverse visits the values
// only (PyObject_VisitManagedDict), never the dict. Once they are invalid
// (the dict took them over) tp_traverse visits the dict itself.
void ManagedDictExtras(PyObject* obj, visitproc visit, void* arg) {
  if (!_PyObject_InlineValues(obj)->valid) return;
  ANNEX_VISIT(_PyObject_ManagedDictPointer(obj)->dict);
}
#endif

bool IsDescriptorType(PyTypeObject* type) {
  return type == &PyMethodDescr_Type || type == &PyClassMethodDescr_Type ||
         type == &PyMemberDescr_Type || type == &PyGetSetDescr_Type ||
         type == &PyWrapperDescr_Type;
}

}  // namespace

PyObject* TypeDictBorrowed(PyTypeObject* type) {
#if PY_VERSION_HEX >= 0x030C0000
  if (StaticTypeState* state = StaticBuiltinState(type)) {
    return state->tp_dict;
  }
#endif
  return type->tp_dict;
}

ExtraReferentsFn ExtraReferentsFor(PyTypeObject* type) {
  if (type == &PyCode_Type) return &CodeExtras;
  if (PyType_IsSubtype(type, &PyType_Type)) return &TypeExtras;
  if (IsDescriptorType(type)) return &DescriptorExtras;
  if (PyType_IsSubtype(type, &PyModule_Type)) return &ModuleExtras;
  if (type == &PyRange_Type &&
      type->tp_basicsize == static_cast<Py_ssize_t>(sizeof(RangeLayout))) {
    return &RangeExtras;
  }
  if (type == &PyLongRangeIter_Type &&
      type->tp_basicsize ==
          static_cast<Py_ssize_t>(sizeof(LongRangeIterLayout))) {
    return &LongRangeIterExtras;
  }
#if PY_VERSION_HEX >= 0x030D0000
  if ((type->tp_flags & Py_TPFLAGS_INLINE_VALUES) &&
      (type->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
    return &ManagedDictExtras;
  }
#endif
  return nullptr;
}

void VisitUnexposedReferents(PyObject* obj, visitproc visit, void* arg) {
  PyTypeObject* type = Py_TYPE(obj);
  if (type == &PyCode_Type) {
    VisitCodeUnexposed(reinterpret_cast<PyCodeObject*>(obj), visit, arg);
  } else if (PyType_IsSubtype(type, &PyType_Type)) {
    TypeUnexposed(reinterpret_cast<PyTypeObject*>(obj), visit, arg);
  } else if (IsDescriptorType(type)) {
    ANNEX_VISIT(reinterpret_cast<PyDescrObject*>(obj)->d_qualname);
  } else if (PyType_IsSubtype(type, &PyModule_Type)) {
    ModuleExtras(obj, visit, arg);
  } else if (ExtraReferentsFn fn = ExtraReferentsFor(type);
             fn == &RangeExtras) {
    ANNEX_VISIT(reinterpret_cast<RangeLayout*>(obj)->length);
  } else if (fn == &LongRangeIterExtras) {
    LongRangeIterExtras(obj, visit, arg);
#if PY_VERSION_HEX >= 0x030D0000
  } else if (fn == &ManagedDictExtras) {
    // Reading obj.__dict__ would make the dict when there is none.
    ManagedDictExtras(obj, visit, arg);
#endif
  }
}

#undef ANNEX_VISIT

}  // namespace annex::python
