// Version-specific reads of CPython's runtime state for code that must not
// take the GIL (the watchdog, docs/design.md rules 6 and 11).
//
// Everything that depends on CPython's private layout (the GIL structure,
// frame chains, the pending-call queue of 3.11/3.12) is in cpython_peek.c,
// behind these few functions, #if-guarded per PY_VERSION_HEX. The
// implementation is C because the internal headers of 3.11 and 3.12 include
// <stdatomic.h> and do not compile as C++.
//
//   AnnexPeekGil gil;
//   if (AnnexPeekGilState(PyInterpreterState_Main(), &gil) == 0 && gil.locked)
//     ...  // gil.holder has held it since gil.switch_number last changed
//
// Reads are racy by nature (like faulthandler's watchdog): the target keeps
// running while we read. Pointers returned are identities, valid only until
// the owning thread moves on; dereference them only through this API.
#pragma once

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

// Who holds the GIL shared by the target (and a legacy annex interpreter).
typedef struct AnnexPeekGil {
  int locked;             // 1 while some thread holds the GIL
  PyThreadState* holder;  // the last thread state that took it
  unsigned long
      switch_number;  // +1 each time a different thread state takes it
  // 1 while a thread of the interpreter asked has waited longer than the
  // switch interval for the holder to drop the GIL (the "drop request").
  int drop_requested;
} AnnexPeekGil;

// One thread state's position in Python code.
typedef struct AnnexPeekFrame {
  const void* frame;  // innermost interpreter frame, NULL outside Python
  const void* instr;  // its instruction pointer (advances as bytecode runs)
} AnnexPeekFrame;

// Reads the state of the GIL used by `interp`. Returns 0, or -1 if unknown.
// Where: any thread, no GIL, reads only; async-signal-safe.
int AnnexPeekGilState(PyInterpreterState* interp, AnnexPeekGil* out);

// The thread identifier (threading.get_ident()) of the main thread.
// Where: any thread, no GIL, reads only.
unsigned long AnnexPeekMainThreadIdent(void);

// Returns 1 once the runtime is finalizing or finalized: thread states are
// about to be freed, so stop reading them. Where: any thread, no GIL.
int AnnexPeekIsFinalizing(void);

// Takes the runtime's thread-list lock (CPython's HEAD_LOCK), giving up
// after `timeout_us`. While held, no thread state or interpreter can be
// unlinked, hence none freed: what AnnexPeekIsLiveThreadState confirms stays
// readable. Returns 1 if taken; then call AnnexPeekUnlockThreadList soon.
// Where: any thread that does not hold the GIL (CPython takes this lock with
// the GIL held, so holding it while waiting for the GIL could deadlock);
// never after finalization (AnnexPeekIsFinalizing).
int AnnexPeekLockThreadList(int timeout_us);
// Where: the thread that took it.
void AnnexPeekUnlockThreadList(void);

// Returns 1 if `ts` is currently in the thread list of some interpreter, so
// it may be read. Where: any thread, no GIL, reads only (racy list walk).
int AnnexPeekIsLiveThreadState(PyThreadState* ts);

// The identifiers of thread state `ts`: `ident` as threading.get_ident(),
// `native_id` as threading.get_native_id() (the Linux TID), 0 if unknown.
// Where: any thread, no GIL, reads only; `ts` must be live.
void AnnexPeekThreadIds(PyThreadState* ts, unsigned long* ident,
                        unsigned long* native_id);

// The interpreter `ts` belongs to. Where: any thread, no GIL, reads only;
// `ts` must be live.
PyInterpreterState* AnnexPeekThreadInterpreter(PyThreadState* ts);

// Reads the innermost frame and instruction pointer of `ts`.
// Where: any thread, no GIL, reads only; `ts` must be live.
void AnnexPeekCurrentFrame(PyThreadState* ts, AnnexPeekFrame* out);

// Writes the Python stack of `ts` to `fd` with write(2), innermost first, one
// `  File "f.py", line N in name` line per frame, at most `max_depth` frames.
// Returns the number of frames written. Where: any thread, no GIL, no
// allocation, reads only; `ts` must be live. The stack should be quiet (a
// stalled thread); a moving stack may give a torn but bounded dump.
int AnnexPeekWriteStack(int fd, PyThreadState* ts, int max_depth);

// Schedules fn(arg) to run on the main thread of the main interpreter at its
// next bytecode boundary (GIL held there), and makes sure that thread
// notices even when the caller is a thread unknown to Python. Returns 0, or
// -1 if the queue is full. Where: any thread, GIL not required.
int AnnexPeekAddMainPendingCall(int (*fn)(void*), void* arg);

// Queues fn(arg) on `interp` for whichever of its threads next reaches a
// bytecode boundary (not only the main thread), and signals the GIL holder:
// a probe of whether the holder runs bytecode. The instruction pointer in
// the frame is not enough: 3.13 does not store it per instruction, and a
// loop dominated by one C call shows the same value at most samples.
// Returns 0, -1 if the queue is full, -2 where no such queue exists (3.11).
// Where: any thread, GIL not required; `interp` must be alive.
int AnnexPeekAddProbeCall(PyInterpreterState* interp, int (*fn)(void*),
                          void* arg);

// --- Annex's own GIL takes ---------------------------------------------
// Every take of the GIL by a thread state of a different owner than the last
// holder increments the GIL's switch number. Annex's own threads (the annex
// thread, its nudger and yielder) take the GIL for heap walks and console
// work; the watchdog must not read those switches as other threads getting
// turns (a busy loop in main would never show a run of a whole timeout while
// the heap is walked every second). So Annex notes the switch number of each
// of its takes in a small process-wide ring, and the watchdog asks whether a
// range of switch numbers is explained by them.

// Notes the current switch number as a take by one of Annex's own thread
// states (consecutive equal numbers are noted once). The note is certain
// when the calling thread's current thread state is the main GIL's last
// holder; else (an annex thread state on 3.12+, which holds the annex's
// own GIL) the number read may be a target thread's take: the watchdog
// counts it, AnnexPeekSwitchesAllOwn does not. Where: a thread of Annex's
// that holds a GIL (it just took it, or swapped thread states under it),
// any interpreter current; cheap (a few loads), no allocation.
void AnnexNoteOwnGilTake(void);

// How many takes AnnexNoteOwnGilTake noted so far (for tests and
// benchmarks). Where: any thread, no GIL.
unsigned long AnnexPeekOwnGilTakeCount(void);

// Whether every switch in (from, to] is explained by Annex: it is one of
// Annex's noted takes, or the take right after one (the GIL going back to
// whoever takes it from Annex). `allow_last` lets `to` itself be
// unexplained (the take of the caller's own thread). Returns 0 when the
// range is longer than the ring remembers. Where: any thread, no GIL, reads
// only.
int AnnexPeekSwitchesExplained(unsigned long from, unsigned long to,
                               int allow_last);

// Whether every switch in (from, to] is one of Annex's certain noted
// takes, with no allowance for the take after one: then no thread state of
// anyone else held the main interpreter's GIL in between (taking it from Annex
// and giving it back would be two switches, the first not noted). Annex's own
// takes that went unnoted make it 0, never 1 wrongly. Returns 0 when the range
// is longer than the ring remembers. Where: a thread that holds the main
// interpreter's GIL (the ring's writers hold it too).
int AnnexPeekSwitchesAllOwn(unsigned long from, unsigned long to);

// Bytes in pymalloc arenas currently allocated for `interp` (the main
// interpreter's, shared by a legacy annex): an upper bound of the memory in
// small Python objects, read from the allocator's own counter. Returns -1
// where the counter is not reachable (3.11 keeps it in a static variable of
// obmalloc.c). Where: any thread, no GIL, reads only (one racy word).
long long AnnexPeekAllocatorArenaBytes(PyInterpreterState* interp);

// --- Python thread names (GIL held) --------------------------------------
// threading keeps a thread's name in its Thread object, which cannot be read
// safely without the GIL (dicts resize, names get replaced and freed). The
// watchdog copies the names at points where the main thread holds the GIL
// (its heartbeat) and shows the copy in dumps.

// Called once per named thread: `ident` as threading.get_ident(), `name`
// threading's name, escaped as the dumps escape names (printable ASCII;
// \xNN, \uNNNN otherwise; at most 100 characters, then "..."),
// NUL-terminated.
typedef void (*AnnexPeekThreadNameFn)(void* ctx, unsigned long ident,
                                      const char* name);

// Calls `fn` for each thread of threading._active (ident -> Thread) of the
// main interpreter whose Thread keeps a str in its instance attribute
// `_name`. Nothing of the target runs and no object is created: sys.modules
// and the dicts are scanned with PyDict_Next (no key object is made), the
// key `_name` is the str that threading.Thread.__init__'s code names, and a
// Thread whose class overrides attribute lookup or defines `_name` itself
// is skipped. Returns the number of names passed, -1 when threading is not
// imported or not as expected. Where: the target's main thread, GIL held,
// main interpreter current.
int AnnexPeekPythonThreadNames(AnnexPeekThreadNameFn fn, void* ctx);

#ifdef __cplusplus
}  // extern "C"
#endif
