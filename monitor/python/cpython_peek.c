// Version-specific, GIL-free reads of CPython's runtime state: see
// cpython_peek.h. Facts relied on, per version, are stated at each function;
// docs/watchdog.md lists them in one place.
#define Py_BUILD_CORE 1

#include "monitor/python/cpython_peek.h"

#include <Python.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "cpython_peek supports CPython 3.11 to 3.13"
#endif

#include "internal/pycore_ceval.h"
#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_gil.h"
#include "internal/pycore_interp.h"
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_lock.h"
#endif
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_obmalloc.h"
#endif
#include "internal/pycore_runtime.h"

#define ANNEX_PY311 (PY_VERSION_HEX < 0x030C0000)
#define ANNEX_PY312 \
  (PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000)
#define ANNEX_PY313 (PY_VERSION_HEX >= 0x030D0000)

// --- Safe reads -------------------------------------------------------------
// Frames of a running thread change under us, so a pointer read from one may
// be stale or torn. Every read that follows such a pointer goes through
// SafeRead: process_vm_readv on our own pid fails with EFAULT on unmapped
// memory instead of faulting. Where a seccomp policy forbids the call (some
// containers), reads fall back to plain loads, which is faulthandler's risk.

// Thread ids and the eval breaker are read as pointer-sized words.
_Static_assert(sizeof(unsigned long) == sizeof(void*), "LP64 expected");

// 0 unknown, 1 process_vm_readv, 2 plain. Threads (the watchdog's, a
// heartbeat on a target thread, a signal handler) may find it out at once:
// relaxed atomic loads and stores (lock-free, so async-signal-safe); each
// finds the same answer, so no ordering is needed.
static int safe_read_mode = 0;

static int SafeReadMode(void) {
  return __atomic_load_n(&safe_read_mode, __ATOMIC_RELAXED);
}

static void SetSafeReadMode(int mode) {
  __atomic_store_n(&safe_read_mode, mode, __ATOMIC_RELAXED);
}

// Copies n bytes at addr into out; returns 1, or 0 if addr is unreadable.
// Where: any thread, no GIL; async-signal-safe.
static int SafeRead(const void* addr, void* out, size_t n) {
  if (addr == NULL) return 0;
  if (SafeReadMode() != 2) {
    struct iovec local = {out, n};
    struct iovec remote = {(void*)addr, n};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got == (ssize_t)n) {
      if (SafeReadMode() == 0) SetSafeReadMode(1);
      return 1;
    }
    if (got < 0 && errno == EFAULT) return 0;
    if (SafeReadMode() == 1) return 0;  // partial read: treat as unreadable
    SetSafeReadMode(2);                 // EPERM/ENOSYS: not allowed here
  }
  memcpy(out, addr, n);
  return 1;
}

// Reads one pointer-sized field; NULL if unreadable. Where: any thread.
static void* SafeReadPointer(const void* addr) {
  void* value = NULL;
  if (!SafeRead(addr, &value, sizeof(value))) return NULL;
  return value;
}

// The GIL structure of `interp`. 3.11: one GIL in the runtime
// (_PyRuntime.ceval.gil). 3.12 and 3.13: each interpreter points at its GIL
// (interp->ceval.gil); a legacy sub-interpreter points at the main one's.
// Where: any thread, no GIL, reads only.
static struct _gil_runtime_state* GilOf(PyInterpreterState* interp) {
#if ANNEX_PY311
  (void)interp;
  return &_PyRuntime.ceval.gil;
#else
  return interp != NULL ? interp->ceval.gil : NULL;
#endif
}

// Where: any thread, no GIL, reads only; async-signal-safe.
int AnnexPeekGilState(PyInterpreterState* interp, AnnexPeekGil* out) {
  struct _gil_runtime_state* gil = GilOf(interp);
  if (gil == NULL || out == NULL) return -1;
    // 3.11/3.12: `locked` and `last_holder` are _Py_atomic_* wrappers; 3.13:
    // plain fields accessed atomically by CPython. `last_holder` is written by
    // every take of the GIL by a different thread state, which also increments
    // `switch_number` (under the GIL's mutex; we read it racily).
#if ANNEX_PY313
  out->locked = __atomic_load_n(&gil->locked, __ATOMIC_ACQUIRE);
  out->holder = __atomic_load_n(&gil->last_holder, __ATOMIC_ACQUIRE);
#else
  out->locked = _Py_atomic_load_relaxed(&gil->locked);
  out->holder = (PyThreadState*)_Py_atomic_load_relaxed(&gil->last_holder);
#endif
  out->switch_number = __atomic_load_n(&gil->switch_number, __ATOMIC_RELAXED);
  // A thread that waits for the GIL longer than the switch interval sets a
  // drop request. 3.11/3.12: on the waiter's interpreter
  // (interp->ceval.gil_drop_request), cleared when a thread of that
  // interpreter drops or takes the GIL, so a holder in another interpreter
  // leaves it set. 3.13: a bit in the holder's tstate->eval_breaker.
#if ANNEX_PY313
  out->drop_requested =
      out->locked && AnnexPeekIsLiveThreadState(out->holder) &&
      ((uintptr_t)SafeReadPointer(&out->holder->eval_breaker) &
       _PY_GIL_DROP_REQUEST_BIT) != 0;
#else
  out->drop_requested = interp != NULL && _Py_atomic_load_relaxed(
                                              &interp->ceval.gil_drop_request);
#endif
  return 0;
}

// _PyRuntime.main_thread is the ident of the thread that initialized Python
// (3.11 to 3.13). Where: any thread, no GIL, reads only.
unsigned long AnnexPeekMainThreadIdent(void) { return _PyRuntime.main_thread; }

// 3.11/3.12 export _Py_IsFinalizing(), 3.13 Py_IsFinalizing(); both read
// the runtime's finalizing thread state. Py_IsInitialized() reads
// _PyRuntime.initialized, cleared at the end of finalization.
// Where: any thread, no GIL, reads only.
int AnnexPeekIsFinalizing(void) {
#if ANNEX_PY313
  if (Py_IsFinalizing()) return 1;
#else
  if (_Py_IsFinalizing()) return 1;
#endif
  return !Py_IsInitialized();
}

// 3.11/3.12: _PyRuntime.interpreters.mutex is a PyThread_type_lock (timed
// acquire is public). 3.13: a PyMutex; its timed lock is not exported, so we
// poll the uncontended fast path (a compare-and-swap of the lock byte) and
// release with the exported PyMutex_Unlock, which wakes parked waiters.
// Where: any thread without the GIL.
int AnnexPeekLockThreadList(int timeout_us) {
#if ANNEX_PY313
  for (int waited = 0;; waited += 50) {
    if (PyMutex_LockFast(&_PyRuntime.interpreters.mutex._bits)) return 1;
    if (waited >= timeout_us) return 0;
    usleep(50);
  }
#else
  PyThread_type_lock lock = _PyRuntime.interpreters.mutex;
  if (lock == NULL) return 0;
  return PyThread_acquire_lock_timed(lock, timeout_us, 0) == PY_LOCK_ACQUIRED;
#endif
}

// Where: the thread that took the lock.
void AnnexPeekUnlockThreadList(void) {
#if ANNEX_PY313
  PyMutex_Unlock(&_PyRuntime.interpreters.mutex);
#else
  PyThread_release_lock(_PyRuntime.interpreters.mutex);
#endif
}

// Walks every interpreter's thread list with the public accessors, without
// HEAD_LOCK, as faulthandler does. Where: any thread, no GIL, reads only.
int AnnexPeekIsLiveThreadState(PyThreadState* ts) {
  if (ts == NULL) return 0;
  int budget = 100000;  // bounds the walk if a list is being rewritten
  for (PyInterpreterState* interp = PyInterpreterState_Head(); interp != NULL;
       interp = PyInterpreterState_Next(interp)) {
    for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != NULL;
         t = PyThreadState_Next(t)) {
      if (t == ts) return 1;
      if (--budget == 0) return 0;
    }
  }
  return 0;
}

// thread_id and native_thread_id are fields of PyThreadState in 3.11 to
// 3.13, written once when the thread state is bound to its thread.
// Where: any thread, no GIL, reads only.
void AnnexPeekThreadIds(PyThreadState* ts, unsigned long* ident,
                        unsigned long* native_id) {
  *ident = ts != NULL ? (unsigned long)SafeReadPointer(&ts->thread_id) : 0;
  *native_id =
      ts != NULL ? (unsigned long)SafeReadPointer(&ts->native_thread_id) : 0;
}

// Where: any thread, no GIL, reads only.
PyInterpreterState* AnnexPeekThreadInterpreter(PyThreadState* ts) {
  return ts != NULL ? (PyInterpreterState*)SafeReadPointer(&ts->interp) : NULL;
}

// The innermost interpreter frame: 3.11/3.12 via tstate->cframe (a struct
// on the thread's C stack while it evaluates), 3.13 tstate->current_frame.
// Where: any thread, no GIL, reads only; `ts` live (thread-list lock held).
static _PyInterpreterFrame* InnermostFrame(PyThreadState* ts) {
#if ANNEX_PY313
  return (_PyInterpreterFrame*)SafeReadPointer(&ts->current_frame);
#else
  _PyCFrame* cframe = (_PyCFrame*)SafeReadPointer(&ts->cframe);
  return (_PyInterpreterFrame*)SafeReadPointer(
      cframe != NULL ? (const void*)&cframe->current_frame : NULL);
#endif
}

// The stored instruction pointer. 3.11/3.12 store `prev_instr` at the start
// of every instruction (still, a loop dominated by one C call shows that
// call at most samples); 3.13 keeps it in a local of the eval loop and
// stores `instr_ptr` only where an instruction may escape (calls), so a loop
// can show the same value for seconds (measured).
// Where: any thread, no GIL, reads only; `ts` live.
void AnnexPeekCurrentFrame(PyThreadState* ts, AnnexPeekFrame* out) {
  out->frame = NULL;
  out->instr = NULL;
  if (ts == NULL) return;
  _PyInterpreterFrame* frame = InnermostFrame(ts);
  out->frame = frame;
  if (frame == NULL) return;
#if ANNEX_PY313
  out->instr = SafeReadPointer(&frame->instr_ptr);
#else
  out->instr = SafeReadPointer(&frame->prev_instr);
#endif
}

// A bounded output buffer flushed with write(2): no allocation.
typedef struct Writer {
  int fd;
  size_t used;
  char buf[512];
} Writer;

// Where: any thread; async-signal-safe.
static void Flush(Writer* w) {
  size_t done = 0;
  while (done < w->used) {
    ssize_t n = write(w->fd, w->buf + done, w->used - done);
    if (n <= 0) break;
    done += (size_t)n;
  }
  w->used = 0;
}

static void PutChar(Writer* w, char c) {
  if (w->used == sizeof(w->buf)) Flush(w);
  w->buf[w->used++] = c;
}

static void PutStr(Writer* w, const char* s) {
  while (*s) PutChar(w, *s++);
}

static void PutHex(Writer* w, unsigned long v, int digits) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) PutChar(w, kHex[(v >> (4 * i)) & 0xf]);
}

static void PutDecimal(Writer* w, long v) {
  char tmp[24];
  int n = 0;
  unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0 && n < (int)sizeof(tmp));
  if (v < 0) PutChar(w, '-');
  while (n > 0) PutChar(w, tmp[--n]);
}

// Writes a str object as printable ASCII with \x, \u, \U escapes, at most
// 300 characters. The header is copied and checked (exact str type, a known
// kind); the characters are copied from where the canonical representation
// lives: after the header for compact strings, behind `data.any` otherwise.
// Where: any thread, no GIL, no allocation, reads only.
static void PutUnicode(Writer* w, PyObject* s) {
  PyASCIIObject head;
  if (!SafeRead(s, &head, sizeof(head)) ||
      head.ob_base.ob_type != &PyUnicode_Type) {
    PutStr(w, "???");
    return;
  }
  const unsigned int kind = head.state.kind;
  if (kind != PyUnicode_1BYTE_KIND && kind != PyUnicode_2BYTE_KIND &&
      kind != PyUnicode_4BYTE_KIND) {
    PutStr(w, "???");
    return;
  }
  const void* data;
  if (head.state.compact) {
    data = head.state.ascii ? (const void*)((PyASCIIObject*)s + 1)
                            : (const void*)((PyCompactUnicodeObject*)s + 1);
  } else {
    data = SafeReadPointer(&((PyUnicodeObject*)s)->data.any);
  }
  Py_ssize_t length = head.length;
  Py_ssize_t shown = length < 300 ? length : 300;
  if (shown < 0) shown = 0;
  Py_UCS4 chars[300];
  unsigned char raw[300 * 4];
  if (shown > 0 && !SafeRead(data, raw, (size_t)shown * kind)) {
    PutStr(w, "???");
    return;
  }
  for (Py_ssize_t i = 0; i < shown; ++i) {
    chars[i] = PyUnicode_READ(kind, raw, i);
  }
  for (Py_ssize_t i = 0; i < shown; ++i) {
    Py_UCS4 ch = chars[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      PutChar(w, (char)ch);
    } else if (ch < 0x100) {
      PutStr(w, "\\x");
      PutHex(w, ch, 2);
    } else if (ch < 0x10000) {
      PutStr(w, "\\u");
      PutHex(w, ch, 4);
    } else {
      PutStr(w, "\\U");
      PutHex(w, ch, 8);
    }
  }
  if (shown < length) PutStr(w, "...");
}

// The code object a frame (copied into `frame`) runs, checked to be one:
// readable, of exact code type, with a readable line table of bytes type.
// NULL for frames without code (3.12+ shim frames owned by the C stack;
// 3.13 frames whose f_executable is not a code object) and for torn reads.
// Copies the code object's header into `head`.
// Where: any thread, no GIL, reads only.
static PyCodeObject* FrameCode(const _PyInterpreterFrame* frame,
                               PyCodeObject* head) {
#if ANNEX_PY311
  PyCodeObject* code = frame->f_code;
#elif ANNEX_PY312
  if (frame->owner == FRAME_OWNED_BY_CSTACK) return NULL;
  PyCodeObject* code = frame->f_code;
#else
  if (frame->owner == FRAME_OWNED_BY_CSTACK) return NULL;
  PyCodeObject* code = (PyCodeObject*)frame->f_executable;
#endif
  if (!SafeRead(code, head, sizeof(*head)) ||
      head->ob_base.ob_base.ob_type != &PyCode_Type) {
    return NULL;
  }
  PyObject table;
  if (!SafeRead(head->co_linetable, &table, sizeof(table)) ||
      table.ob_type != &PyBytes_Type) {
    return NULL;
  }
  return code;
}

// Line number of the frame's current instruction, or 0 for a frame still
// in its prologue (CPython's "incomplete" frames, which faulthandler skips
// too). Works on the copies, so each field is read once: CPython's inline
// helpers would read f_code/f_executable again. The instruction offset is
// `prev_instr` (3.11/3.12) or `instr_ptr` (3.13) minus the first code unit;
// PyCode_Addr2Line reads the (checked) line table and allocates nothing.
// Where: any thread, no GIL, reads only.
static int FrameLine(const _PyInterpreterFrame* frame, PyCodeObject* code,
                     const PyCodeObject* head) {
#if ANNEX_PY313
  const _Py_CODEUNIT* instr = frame->instr_ptr;
#else
  const _Py_CODEUNIT* instr = frame->prev_instr;
#endif
  const _Py_CODEUNIT* first = _PyCode_CODE(code);
  if (frame->owner != FRAME_OWNED_BY_GENERATOR &&
      instr < first + head->_co_firsttraceable) {
    return 0;
  }
  Py_ssize_t lasti = instr - first;
  if (lasti < 0 || lasti >= Py_SIZE(head)) return head->co_firstlineno;
  return PyCode_Addr2Line(code,
                          (int)(lasti * (Py_ssize_t)sizeof(_Py_CODEUNIT)));
}

// Where: any thread, no GIL, no allocation, reads only; `ts` live.
int AnnexPeekWriteStack(int fd, PyThreadState* ts, int max_depth) {
  Writer w;
  w.fd = fd;
  w.used = 0;
  int written = 0;
  int steps = 0;
  _PyInterpreterFrame* address = ts != NULL ? InnermostFrame(ts) : NULL;
  if (address == NULL) PutStr(&w, "  <no Python frame>\n");
  _PyInterpreterFrame frame;
  for (; address != NULL; address = frame.previous) {
    if (++steps > 4 * max_depth + 16) break;  // a torn chain cannot loop us
    if (!SafeRead(address, &frame, sizeof(frame))) {
      PutStr(&w, "  <unreadable frame>\n");
      break;
    }
    PyCodeObject head;
    PyCodeObject* code = FrameCode(&frame, &head);
    if (code == NULL) continue;
    const int line = FrameLine(&frame, code, &head);
    if (line == 0) continue;  // incomplete frame
    if (written == max_depth) {
      PutStr(&w, "  ...\n");
      break;
    }
    PutStr(&w, "  File \"");
    PutUnicode(&w, head.co_filename);
    PutStr(&w, "\", line ");
    PutDecimal(&w, line);
    PutStr(&w, " in ");
    PutUnicode(&w, head.co_name);
    PutChar(&w, '\n');
    ++written;
  }
  Flush(&w);
  return written;
}

// Is the main thread of the main interpreter the GIL holder right now?
// Where: any thread, no GIL, reads only.
static int MainThreadHoldsGil(PyInterpreterState* main) {
  AnnexPeekGil gil;
  if (AnnexPeekGilState(main, &gil) != 0 || !gil.locked) return 0;
  if (!AnnexPeekIsLiveThreadState(gil.holder)) return 0;
  // Safe reads: the holder may exit between the check and the reads.
  return SafeReadPointer(&gil.holder->interp) == (void*)main &&
         (unsigned long)SafeReadPointer(&gil.holder->thread_id) ==
             _PyRuntime.main_thread;
}

// Facts: 3.11's Py_AddPendingCall queues on the interpreter of whichever
// thread state holds the GIL (a global in 3.11), which may be the annex, so
// we queue on the main interpreter explicitly. On 3.11 and 3.12 a call
// queued from a thread that is not the main thread does not set the
// interpreter's eval breaker (it is computed for the calling thread), so a
// main thread that keeps the GIL never looks at the queue; a main thread
// that takes the GIL recomputes the breaker for itself. So when the main
// thread holds the GIL we set the breaker, the same flag CPython sets for a
// signal. On 3.13 Py_AddPendingCall queues for the main interpreter's main
// thread and signals it. Where: any thread, GIL not required.
int AnnexPeekAddMainPendingCall(int (*fn)(void*), void* arg) {
  PyInterpreterState* main = PyInterpreterState_Main();
  if (main == NULL) return -1;
#if ANNEX_PY311
  if (_PyEval_AddPendingCall(main, fn, arg) != 0) return -1;
  if (MainThreadHoldsGil(main))
    _Py_atomic_store_relaxed(&main->ceval.eval_breaker, 1);
  return 0;
#elif ANNEX_PY312
  if (Py_AddPendingCall(fn, arg) != 0) return -1;
  if (MainThreadHoldsGil(main))
    _Py_atomic_store_relaxed(&main->ceval.eval_breaker, 1);
  return 0;
#else
  (void)MainThreadHoldsGil;
  return Py_AddPendingCall(fn, arg);
#endif
}

// 3.12 and 3.13: _PyEval_AddPendingCall(interp, fn, arg, 0) (not "main
// thread only") queues on the interpreter's own queue, served by whichever
// of its threads next checks the eval breaker; the breaker is set for it
// (3.12: computed without regard to the calling thread; 3.13: the running
// thread is signalled). 3.11 has no such queue: its pending calls run on the
// main thread only. Where: any thread, GIL not required.
int AnnexPeekAddProbeCall(PyInterpreterState* interp, int (*fn)(void*),
                          void* arg) {
#if ANNEX_PY313
  if (interp == NULL) return -1;
  return _PyEval_AddPendingCall(interp, fn, arg, 0) == _Py_ADD_PENDING_SUCCESS
             ? 0
             : -1;
#elif ANNEX_PY312
  if (interp == NULL) return -1;
  return _PyEval_AddPendingCall(interp, fn, arg, 0) == 0 ? 0 : -1;
#else
  (void)interp;
  (void)fn;
  (void)arg;
  return -2;
#endif
}

// 3.12: interp->obmalloc is the state itself; 3.13: a pointer to it (the
// main interpreter's, for a sub-interpreter that shares it). The counter is
// updated with the GIL held; we read one word racily.
// Where: any thread, no GIL, reads only.
long long AnnexPeekAllocatorArenaBytes(PyInterpreterState* interp) {
#if ANNEX_PY311
  (void)interp;
  return -1;
#else
  if (interp == NULL) return -1;
#if ANNEX_PY313
  struct _obmalloc_state* state = interp->obmalloc;
  if (state == NULL) return -1;
#else
  struct _obmalloc_state* state = &interp->obmalloc;
#endif
  size_t arenas = __atomic_load_n(&state->mgmt.narenas_currently_allocated,
                                  __ATOMIC_RELAXED);
  return (long long)arenas * ARENA_SIZE;
#endif
}

// --- Annex's own GIL takes (see cpython_peek.h) -----------------------------
// A ring of the switch numbers of Annex's last takes, each slot the number
// shifted left by one with the low bit set when the take is certain: the
// noting thread's own thread state held the main GIL (on 3.12+ the annex's
// eval loop notes while holding the annex's GIL only, and the main GIL's
// number it reads may be a target thread's take). One atomic word per
// slot, so a slot never mixes two notes. Writers of certain notes hold the
// main GIL, so they are serialized among themselves; the watchdog reads
// racily, and a stale slot holds an old number, outside any range it asks
// about.
#define ANNEX_OWN_TAKES 256
static unsigned long own_takes[ANNEX_OWN_TAKES];
static unsigned long own_takes_next;  // total noted; slot = next % size
static unsigned long own_takes_last;  // the last slot value written

void AnnexNoteOwnGilTake(void) {
  AnnexPeekGil gil;
  if (AnnexPeekGilState(PyInterpreterState_Main(), &gil) != 0) return;
#if ANNEX_PY313
  PyThreadState* current = PyThreadState_GetUnchecked();
#else
  PyThreadState* current = _PyThreadState_UncheckedGet();
#endif
  const unsigned long certain =
      gil.locked && current != NULL && gil.holder == current ? 1 : 0;
  const unsigned long value = (gil.switch_number << 1) | certain;
  unsigned long n = __atomic_load_n(&own_takes_next, __ATOMIC_RELAXED);
  const unsigned long last = __atomic_load_n(&own_takes_last, __ATOMIC_RELAXED);
  // Consecutive equal numbers are noted once, unless a certain note
  // follows an uncertain one.
  if (n != 0 && (last == value || (!certain && last >> 1 == value >> 1))) {
    return;
  }
  __atomic_store_n(&own_takes[n % ANNEX_OWN_TAKES], value, __ATOMIC_RELAXED);
  __atomic_store_n(&own_takes_last, value, __ATOMIC_RELAXED);
  __atomic_store_n(&own_takes_next, n + 1, __ATOMIC_RELEASE);
}

unsigned long AnnexPeekOwnGilTakeCount(void) {
  return __atomic_load_n(&own_takes_next, __ATOMIC_ACQUIRE);
}

int AnnexPeekSwitchesExplained(unsigned long from, unsigned long to,
                               int allow_last) {
  if (to == from) return 1;
  if (to - from > ANNEX_OWN_TAKES / 2) return 0;  // wrapped, or too long
  unsigned long snapshot[ANNEX_OWN_TAKES];
  unsigned long n = __atomic_load_n(&own_takes_next, __ATOMIC_ACQUIRE);
  unsigned long count = n < ANNEX_OWN_TAKES ? n : ANNEX_OWN_TAKES;
  for (unsigned long i = 0; i < count; ++i) {
    snapshot[i] = __atomic_load_n(&own_takes[i], __ATOMIC_RELAXED) >> 1;
  }
  for (unsigned long s = from + 1; s != to + 1; ++s) {
    if (allow_last && s == to) break;
    int explained = 0;
    for (unsigned long i = 0; i < count && !explained; ++i) {
      explained = snapshot[i] == s || snapshot[i] + 1 == s;
    }
    if (!explained) return 0;
  }
  return 1;
}

int AnnexPeekSwitchesAllOwn(unsigned long from, unsigned long to) {
  if (to == from) return 1;
  if (to - from > ANNEX_OWN_TAKES / 2) return 0;  // wrapped, or too long
  unsigned long n = __atomic_load_n(&own_takes_next, __ATOMIC_ACQUIRE);
  unsigned long count = n < ANNEX_OWN_TAKES ? n : ANNEX_OWN_TAKES;
  for (unsigned long s = from + 1; s != to + 1; ++s) {
    int own = 0;
    for (unsigned long i = 0; i < count && !own; ++i) {
      // Certain notes only (see the ring above).
      own = __atomic_load_n(&own_takes[i], __ATOMIC_RELAXED) == ((s << 1) | 1);
    }
    if (!own) return 0;
  }
  return 1;
}

// --- Python thread names (GIL held) ---------------------------------------

// The value of the str key `key` in `dict` (borrowed), found by scanning:
// PyDict_GetItemString would create a str. Where: GIL held.
static PyObject* DictItemByAscii(PyObject* dict, const char* key) {
  if (dict == NULL || !PyDict_Check(dict)) return NULL;
  const Py_ssize_t length = (Py_ssize_t)strlen(key);
  Py_ssize_t pos = 0;
  PyObject* k = NULL;
  PyObject* v = NULL;
  while (PyDict_Next(dict, &pos, &k, &v)) {
    if (PyUnicode_CheckExact(k) && PyUnicode_GET_LENGTH(k) == length &&
        PyUnicode_CompareWithASCIIString(k, key) == 0)
      return v;
  }
  return NULL;
}

// Writes `s` escaped as PutUnicode does into `out` (NUL-terminated).
// Where: GIL held; reads only.
static void EscapeName(PyObject* s, char* out, size_t cap) {
  size_t n = 0;
  out[0] = 0;
#if ANNEX_PY311
  if (!PyUnicode_IS_READY(s)) return;  // legacy string: readying allocates
#endif
  const int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  const Py_ssize_t length = PyUnicode_GET_LENGTH(s);
  const Py_ssize_t shown = length < 100 ? length : 100;
  for (Py_ssize_t i = 0; i < shown; ++i) {
    Py_UCS4 ch = PyUnicode_READ(kind, data, i);
    char piece[12];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      piece[0] = (char)ch;
      piece[1] = 0;
    } else {
      static const char hex[] = "0123456789abcdef";
      int digits = ch < 0x100 ? 2 : ch < 0x10000 ? 4 : 8;
      piece[0] = '\\';
      piece[1] = digits == 2 ? 'x' : digits == 4 ? 'u' : 'U';
      for (int d = 0; d < digits; ++d)
        piece[2 + d] = hex[(ch >> (4 * (digits - 1 - d))) & 0xf];
      piece[2 + digits] = 0;
    }
    size_t len = strlen(piece);
    if (n + len + 4 >= cap) break;
    memcpy(out + n, piece, len);
    n += len;
  }
  if (shown < length && n + 4 < cap) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = 0;
}

// `_name` of `thread` as a new reference, or NULL; raises nothing (a
// missing attribute creates no exception). Where: GIL held.
static PyObject* ThreadNameAttr(PyObject* thread, PyObject* key) {
  PyTypeObject* type = Py_TYPE(thread);
  if (type->tp_getattro != PyObject_GenericGetAttr) return NULL;
  if (_PyType_Lookup(type, key) != NULL) return NULL;
  PyObject* value = NULL;
#if ANNEX_PY313
  int found = PyObject_GetOptionalAttr(thread, key, &value);
#else
  int found = _PyObject_LookupAttr(thread, key, &value);
#endif
  if (found < 0) {
    PyErr_Clear();
    return NULL;
  }
  return value;
}

// Facts: threading (3.11-3.13) keeps ident -> Thread in the module global
// `_active` and each name in the instance attribute `_name`, which
// Thread.__init__ assigns (so its code object's co_names holds that str).
// The generic attribute lookup reads an instance's inline values in place
// for an exact str key (no __dict__ is made).
int AnnexPeekPythonThreadNames(AnnexPeekThreadNameFn fn, void* ctx) {
  // Not PyImport_GetModuleDict(): it aborts once finalization cleared
  // sys.modules (a late pending call may still run then).
  if (AnnexPeekIsFinalizing()) return -1;
  PyInterpreterState* main = PyInterpreterState_Main();
#if ANNEX_PY311
  PyObject* modules = main->modules;
#else
  PyObject* modules = main->imports.modules;
#endif
  PyObject* threading = DictItemByAscii(modules, "threading");  // borrowed
  if (threading == NULL || !PyModule_Check(threading)) return -1;
  PyObject* globals = PyModule_GetDict(threading);  // borrowed
  PyObject* active = DictItemByAscii(globals, "_active");
  PyObject* thread_type = DictItemByAscii(globals, "Thread");
  if (active == NULL || !PyDict_Check(active) || thread_type == NULL ||
      !PyType_Check(thread_type)) {
    return -1;
  }
  PyObject* init =
      DictItemByAscii(((PyTypeObject*)thread_type)->tp_dict, "__init__");
  if (init == NULL || !PyFunction_Check(init)) return -1;
  PyObject* code = PyFunction_GET_CODE(init);
  if (code == NULL || !PyCode_Check(code)) return -1;
  PyObject* names = ((PyCodeObject*)code)->co_names;
  PyObject* key = NULL;  // borrowed from co_names
  for (Py_ssize_t i = 0; names != NULL && i < PyTuple_GET_SIZE(names); ++i) {
    PyObject* item = PyTuple_GET_ITEM(names, i);
    if (PyUnicode_CheckExact(item) &&
        PyUnicode_CompareWithASCIIString(item, "_name") == 0) {
      key = item;
      break;
    }
  }
  if (key == NULL) return -1;
  int count = 0;
  Py_ssize_t pos = 0;
  PyObject* ident_obj = NULL;
  PyObject* thread = NULL;
  while (PyDict_Next(active, &pos, &ident_obj, &thread)) {
    if (!PyLong_CheckExact(ident_obj)) continue;
    unsigned long ident = PyLong_AsUnsignedLong(ident_obj);
    if (ident == (unsigned long)-1 && PyErr_Occurred()) {
      PyErr_Clear();
      continue;
    }
    PyObject* name = ThreadNameAttr(thread, key);
    if (name == NULL) continue;
    if (PyUnicode_Check(name)) {
      char text[512];
      EscapeName(name, text, sizeof(text));
      fn(ctx, ident, text);
      ++count;
    }
    Py_DECREF(name);
  }
  return count;
}
