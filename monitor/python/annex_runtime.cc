// The annex interpreter's thread: creation, work queue, yielding, shutdown.
#include "monitor/python/annex_runtime.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "monitor/python/annex_waits_py.h"
#include "monitor/python/annex_waits_watch_py.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/python/gilstate_bind.h"
#include "monitor/python/version.h"

namespace annex::python {

struct AnnexRuntime::Task {
  const Work* work;
  Work owned;  // RunWithin(): the runtime's own copy; `work` points to it
  // Guarded by the runtime's mu_, which an annotation here cannot name
  // (a Task does not know its runtime).
  bool started = false;
  bool done = false;
  bool interrupt = false;  // RunWithin interrupted it
  absl::Status status;
};

// Shared between the runtime and the atexit callback living in the target,
// which may outlive the runtime (it is unregistered, but a copy of the list
// may be running). `runtime` is null once the runtime stopped.
struct AnnexRuntime::AtExitLink {
  const pid_t owner = getpid();  // a forked child has no annex to stop
  std::mutex mu;
  AnnexRuntime* runtime ABSL_GUARDED_BY(mu) = nullptr;
};

namespace {

// 3.13 asks the GIL holder itself to drop the GIL, whatever interpreter the
// waiter belongs to; older versions need the nudger (see the header).
constexpr bool kNeedsTargetNudges = PY_VERSION_HEX < 0x030D0000;
constexpr auto kNudgePeriod = std::chrono::milliseconds(2);
// Longest single wait of the annex's lock and socket waits, i.e. how late
// an Interrupt() ends them (InstallInterruptibleWaits).
constexpr auto kInterruptSlice = std::chrono::milliseconds(50);

constexpr const char* kAtExitCapsule = "annex.atexit_link";
// How long a fork() waits for the annex interpreter to end before it
// interrupts Python code running there, and then how much longer.
constexpr auto kForkGrace = std::chrono::seconds(2);
constexpr auto kForkPatience = std::chrono::seconds(28);
// How often Stop() interrupts work that is still running.
constexpr auto kStopInterruptPeriod = std::chrono::milliseconds(100);

void DeleteLinkCapsule(PyObject* capsule) {
  delete static_cast<std::shared_ptr<void>*>(
      PyCapsule_GetPointer(capsule, kAtExitCapsule));
}

// Releases the GIL held by the calling thread (if any) while `wait` runs.
// Where: any thread but the annex thread; with or without the GIL.
template <typename F>
void WaitWithoutGil(F&& wait) {
  ScopedGilReleaseIfHeld release;
  wait();
}

// Lets CPython raise and clear an asynchronous exception still pending on
// `ts` (current). Calling PyThreadState_SetAsyncExc(id, NULL) instead would
// leave the "async exception" signal set with nothing to raise: on 3.11 the
// eval breaker then stays set for good, and with a trace function installed
// the eval loop re-dispatches RESUME forever.
// Where: annex thread, GIL held, `ts` current.
void ConsumePendingInterrupt(PyThreadState* ts) {
  if (ts->async_exc == nullptr) return;
  PyObject* globals = PyDict_New();
  if (globals != nullptr) {
    PyObject* r = PyRun_String("None", Py_eval_input, globals, globals);
    Py_XDECREF(r);
    Py_DECREF(globals);
  }
  PyErr_Clear();
}

}  // namespace

AnnexRuntime::AnnexRuntime(AnnexOptions options)
    : options_(std::move(options)),
      owner_pid_(getpid()),
      atexit_link_(std::make_shared<AtExitLink>()) {}

absl::StatusOr<std::unique_ptr<AnnexRuntime>> AnnexRuntime::Start(
    AnnexOptions options) {
  if (!Py_IsInitialized()) {
    return absl::FailedPreconditionError(
        "Python is not initialized: call Py_Initialize() before starting the "
        "annex");
  }
  if (absl::Status s = CheckRuntimeVersion(); !s.ok()) return s;
  if (ThisThreadHoldsGil()) {
    PyThreadState* current = CurrentThreadStateUnchecked();
    if (current != nullptr &&
        PyThreadState_GetInterpreter(current) != PyInterpreterState_Main()) {
      // E.g. annex code (a work item) starting another annex: the new
      // runtime would bind thread states of the wrong interpreter.
      return absl::FailedPreconditionError(
          "an annex can only be started from the main interpreter, not from "
          "a sub-interpreter such as the annex itself");
    }
  }
  std::unique_ptr<AnnexRuntime> rt(new AnnexRuntime(std::move(options)));
  rt->target_ = PyInterpreterState_Main();
  {
    // Hold mu_ so the thread cannot finish start-up before its id is known.
    std::lock_guard<std::mutex> lock(rt->mu_);
    rt->thread_ = std::thread([r = rt.get()] { r->ThreadMain(); });
    rt->thread_id_.store(rt->thread_.get_id());
    if (kNeedsTargetNudges) {
      rt->nudger_ = std::thread([r = rt.get()] { r->NudgerMain(); });
    }
    rt->yielder_ = std::thread([r = rt.get()] { r->YielderMain(); });
  }
  absl::Status status;
  WaitWithoutGil([&] {
    std::unique_lock<std::mutex> lock(rt->mu_);
    rt->cv_.wait(lock, [&] { return rt->started_; });
    status = rt->start_status_;
  });
  if (!status.ok()) {
    WaitWithoutGil([&] {
      rt->thread_.join();
      {
        std::lock_guard<std::mutex> lock(rt->mu_);
        rt->nudger_exit_ = true;
      }
      rt->cv_.notify_all();
      if (rt->nudger_.joinable()) rt->nudger_.join();
      if (rt->yielder_.joinable()) rt->yielder_.join();
    });
    std::lock_guard<std::mutex> lock(rt->stop_mu_);
    rt->stopped_ = true;
    return status;
  }
  return rt;
}

AnnexRuntime::~AnnexRuntime() {
  if (OnAnnexThread()) {
    // Destroyed from its own work: cannot join itself. Detaching would leave
    // a thread using freed memory, so this is a programming error.
    std::abort();
  }
  Stop().IgnoreError();
}

bool AnnexRuntime::OnAnnexThread() const {
  return std::this_thread::get_id() == thread_id_.load();
}

absl::Status AnnexRuntime::CreateInterpreters() {
  ts_.target_ts = PyThreadState_New(target_);
  if (ts_.target_ts == nullptr) {
    return absl::InternalError("cannot create a thread state in the target");
  }
  handoff_.Acquire(ts_.target_ts);
  absl::Status status = NewAnnex();
  if (!status.ok()) {
    PyThreadState_Clear(ts_.target_ts);
    PyThreadState_DeleteCurrent();
    ts_.target_ts = nullptr;
    return status;
  }
  {
    ScopedTargetSwap swap(ts_);
    RegisterTargetAtExit();
    RegisterTargetAtFork();
  }
  annex_swap_thread_state(ts_.target_ts);
  PyEval_SaveThread();
  return absl::OkStatus();
}

absl::Status AnnexRuntime::NewAnnex() {
  if (annex_interpreter_creation_would_deadlock()) {
    return absl::FailedPreconditionError(
        "CPython 3.11 cannot create the annex while tracemalloc is tracing "
        "(its allocator hook deadlocks in Py_NewInterpreter): start the "
        "monitor before tracemalloc.start(), or stop tracing first");
  }
  PyThreadState* annex = NewSharedGilInterpreter();
  if (annex == nullptr) {
    annex_swap_thread_state(ts_.target_ts);
    return absl::InternalError(
        "CPython refused to create the annex interpreter");
  }
  ts_.annex_ts = annex;
  annex_interp_ = PyThreadState_GetInterpreter(annex);
  // The yield hook: a C trace function on this thread state only.
  PyObject* self = PyCapsule_New(this, nullptr, nullptr);
  if (self != nullptr) {
    PyEval_SetTrace(&AnnexRuntime::YieldHook, self);
    Py_DECREF(self);  // the thread state holds its own reference
  } else {
    PyErr_Clear();
  }
  InstallInterruptibleSleep();
  InstallInterruptibleWaits();
  InstallAnnexInput();
  return absl::OkStatus();
}

namespace {

// The annex's interruptible waits are Python: monitor/python/py/
// annex_waits.py (the patches) and annex_waits_watch.py (the import watch
// that applies them), compiled into the binary (//tools:embed_file.bzl).
// The modules whose first import runs the watch (its WATCHED).
constexpr const char* kWaitsWatched[] = {"threading", "socket", "select",
                                         "subprocess", "ssl"};

// find_spec(name, path=None, target=None) of the finder module that
// InstallInterruptibleWaits puts on the annex's sys.meta_path. Where: a
// thread of the annex interpreter, GIL held, inside an import.
PyObject* WaitsFindSpec(PyObject* holder, PyObject* args) {
  PyObject* name = nullptr;
  PyObject* path = Py_None;
  PyObject* target = Py_None;
  if (!PyArg_ParseTuple(args, "U|OO:find_spec", &name, &path, &target)) {
    return nullptr;
  }
  bool watched = false;
  for (const char* m : kWaitsWatched) {
    watched |= PyUnicode_CompareWithASCIIString(name, m) == 0;
  }
  if (!watched) Py_RETURN_NONE;
  // First of the two: compile the watcher, make its find_spec the
  // finder's own, and let it answer.
  PyObject* globals = PyDict_New();
  PyObject* result = nullptr;
  if (globals != nullptr && PyDict_SetItemString(globals, "__builtins__",
                                                 PyEval_GetBuiltins()) == 0) {
    PyObject* code =
        Py_CompileString(embedded::kAnnexWaitsWatchPy,
                         embedded::kAnnexWaitsWatchPyPath, Py_file_input);
    if (code != nullptr) result = PyEval_EvalCode(code, globals, globals);
    Py_XDECREF(code);
  }
  PyObject* watch = result != nullptr ? PyDict_GetItemString(globals, "_watch")
                                      : nullptr;  // borrowed
  PyObject* find_spec = nullptr;
  if (watch != nullptr) {
    const double slice = std::chrono::duration<double>(kInterruptSlice).count();
    find_spec =
        PyObject_CallFunction(watch, "dssO", slice, embedded::kAnnexWaitsPy,
                              embedded::kAnnexWaitsPyPath, holder);
  }
  Py_XDECREF(result);
  Py_XDECREF(globals);
  if (find_spec == nullptr ||
      PyObject_SetAttrString(holder, "find_spec", find_spec) < 0) {
    // Only the interruptibility is lost; the import goes on without us.
    Py_XDECREF(find_spec);
    PyErr_Clear();
    Py_RETURN_NONE;
  }
  PyObject* spec =
      PyObject_CallFunctionObjArgs(find_spec, name, path, target, nullptr);
  Py_DECREF(find_spec);
  return spec;
}

}  // namespace

void AnnexRuntime::InstallInterruptibleWaits() {
  // Where: annex thread, GIL held, annex current. At start only a module
  // with one C function goes on sys.meta_path: nothing is compiled and no
  // class is made until the annex imports threading or socket (3.12 keeps
  // memory of what every annex imports: tests/monitor:cycles_test). A
  // failure leaves the plain waits: only their interruptibility is lost.
  static PyMethodDef find_spec_def = {
      "find_spec", reinterpret_cast<PyCFunction>(&WaitsFindSpec), METH_VARARGS,
      "Annex: makes the annex's lock and socket waits interruptible when it "
      "first imports threading or socket."};
  PyObject* holder = PyModule_New("annex_waits");
  PyObject* fn =
      holder != nullptr ? PyCFunction_New(&find_spec_def, holder) : nullptr;
  PyObject* meta_path = PySys_GetObject("meta_path");  // borrowed
  if (fn == nullptr || PyObject_SetAttrString(holder, "find_spec", fn) < 0 ||
      meta_path == nullptr || !PyList_Check(meta_path) ||
      PyList_Insert(meta_path, 0, holder) < 0) {
    PyErr_Clear();
  }
  Py_XDECREF(fn);
  Py_XDECREF(holder);
}

void AnnexRuntime::InstallInterruptibleSleep() {
  static PyMethodDef sleep_def = {
      "sleep", &AnnexRuntime::SleepCallback, METH_O,
      "sleep(seconds)\n\nAs time.sleep, but a console Ctrl-C or a client "
      "that leaves (AnnexRuntime::Interrupt) ends it with KeyboardInterrupt."};
  // The annex's own `time` module object (a copy of the target's, or a
  // module of its own): the target's time.sleep is not touched.
  PyObject* time = PyImport_ImportModule("time");
  PyObject* self = PyCapsule_New(this, nullptr, nullptr);
  PyObject* fn = (time && self) ? PyCFunction_New(&sleep_def, self) : nullptr;
  if (fn == nullptr || PyObject_SetAttrString(time, "sleep", fn) < 0) {
    PyErr_Clear();  // plain time.sleep stays: only Ctrl-C is lost
  }
  Py_XDECREF(fn);
  Py_XDECREF(self);
  Py_XDECREF(time);
}

namespace {

// The annex's input(): the process's stdin belongs to the program being
// watched (its terminal, a pipe, /dev/null), and a read there would take
// the host's input and block, uninterruptibly, until a line came.
// Where: annex thread, GIL held, annex current.
PyObject* AnnexInput(PyObject*, PyObject*, PyObject*) {
  PyErr_SetString(
      PyExc_RuntimeError,
      "input() is not available in the annex: it would read the stdin of "
      "the process being watched (its terminal or pipe), taking the "
      "program's input and blocking until a line came. Put the values in "
      "the code you run instead.");
  return nullptr;
}

}  // namespace

void AnnexRuntime::InstallAnnexInput() {
  static PyMethodDef input_def = {
      "input",
      reinterpret_cast<PyCFunction>(
          reinterpret_cast<void (*)(void)>(&AnnexInput)),
      METH_VARARGS | METH_KEYWORDS,
      "input(prompt='')\n\nNot in the annex: it would read the watched "
      "process's stdin (RuntimeError)."};
  // The annex's own builtins module: the target's input() is not touched.
  PyObject* builtins = PyImport_ImportModule("builtins");
  PyObject* fn = builtins ? PyCFunction_New(&input_def, nullptr) : nullptr;
  if (fn == nullptr || PyObject_SetAttrString(builtins, "input", fn) < 0) {
    PyErr_Clear();  // the plain input() stays
  }
  Py_XDECREF(fn);
  Py_XDECREF(builtins);
}

PyObject* AnnexRuntime::SleepCallback(PyObject* self, PyObject* arg) {
  auto* rt = static_cast<AnnexRuntime*>(PyCapsule_GetPointer(self, nullptr));
  if (rt == nullptr) return nullptr;
  double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
  if (std::isnan(seconds)) {
    PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
    return nullptr;
  }
  if (seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
    return nullptr;
  }
  seconds = std::min(seconds, 1e9);  // ~31 years; keeps the clock in range
  bool interrupted = false;
  Py_BEGIN_ALLOW_THREADS;
  {
    const auto until =
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(seconds));
    std::unique_lock<std::mutex> lock(rt->mu_);
    rt->sleeping_ = true;
    const bool woken = rt->cv_.wait_until(lock, until, [&] {
      return rt->interrupt_.load() || rt->async_pending_ || rt->stop_requested_;
    });
    rt->sleeping_ = false;
    // One interrupt, one KeyboardInterrupt: the flag is taken here or by
    // the trace hook or the yielder (an async exception), never twice. A
    // pending async exception is raised by the eval loop on return.
    interrupted = woken && (rt->interrupt_.exchange(false) ||
                            (rt->stop_requested_ && !rt->async_pending_));
    rt->async_pending_ = false;
  }
  Py_END_ALLOW_THREADS;
  if (interrupted) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return nullptr;
  }
  Py_RETURN_NONE;
}

void AnnexRuntime::EndAnnex() {
  if (options_.on_stop) options_.on_stop(*this);
  PyEval_SetTrace(nullptr, nullptr);
  Py_EndInterpreter(ts_.annex_ts);  // leaves no thread state current
  ts_.annex_ts = nullptr;
  annex_interp_ = nullptr;
  annex_swap_thread_state(ts_.target_ts);
}

void AnnexRuntime::DestroyInterpreters() {
  handoff_.Acquire(ts_.target_ts);
  if (ts_.annex_ts != nullptr) {  // null when a fork left it ended
    annex_swap_thread_state(ts_.annex_ts);
    EndAnnex();
  }
  UnregisterTargetAtExit();
  PyThreadState_Clear(ts_.target_ts);
  PyThreadState_DeleteCurrent();  // also releases the GIL
  ts_.target_ts = nullptr;
}

void AnnexRuntime::SuspendAnnex() {
  {
    // Py_EndInterpreter requires the annex's last thread state.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !in_annex_; });
  }
  SetActive(true);
  handoff_.Acquire(ts_.target_ts);
  if (ts_.annex_ts != nullptr) {
    annex_swap_thread_state(ts_.annex_ts);
    EndAnnex();
  }
  PyEval_SaveThread();
  SetActive(false);
  {
    std::unique_lock<std::mutex> lock(mu_);
    suspended_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return stop_requested_ || !suspend_requested_; });
    if (stop_requested_) return;  // DestroyInterpreters finds no annex
    // Not suspended from here on: a fork() requested while the new annex
    // is being created waits until the loop has ended it again.
    suspended_ = false;
  }
  SetActive(true);
  handoff_.Acquire(ts_.target_ts);
  absl::Status status = NewAnnex();  // annex current when OK
  if (status.ok() && options_.on_start) {
    status = options_.on_start(*this);
    if (!status.ok()) EndAnnex();
  }
  if (status.ok()) annex_swap_thread_state(ts_.target_ts);
  PyEval_SaveThread();
  SetActive(false);
  if (!status.ok()) {
    // Work now fails with Unavailable (see ThreadMain); Stop() still works.
    std::fprintf(stderr,
                 "annex: the annex interpreter could not be created again "
                 "after fork(): %s\n",
                 std::string(status.message()).c_str());
  }
  fork_restarts_.fetch_add(1);
}

void AnnexRuntime::SetActive(bool active) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ += active ? 1 : -1;
  }
  cv_.notify_all();
}

void AnnexRuntime::NudgerMain() {
  // Where: its own thread; takes the GIL only through the hand-off, with a
  // target thread state, and never runs Python code.
  nudge_ts_ = PyThreadState_New(target_);
  if (nudge_ts_ == nullptr) return;
  // Binds the fresh thread state to this thread once, with the GIL.
  handoff_.Acquire(nudge_ts_);
  PyEval_SaveThread();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return nudger_exit_ || active_ > 0; });
      if (nudger_exit_) break;
    }
    handoff_.Acquire(nudge_ts_);
    PyEval_SaveThread();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kNudgePeriod, [&] { return nudger_exit_; });
  }
  handoff_.Acquire(nudge_ts_);
  PyThreadState_Clear(nudge_ts_);
  PyThreadState_DeleteCurrent();
  nudge_ts_ = nullptr;
}

void AnnexRuntime::YielderMain() {
  // Where: its own thread; enters the annex only while a work item runs.
  const auto stale = 2 * options_.yield_interval;
  for (;;) {
    bool interrupt = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return nudger_exit_ || task_running_; });
      if (nudger_exit_) break;
      cv_.wait_for(lock, options_.yield_interval, [&] {
        return nudger_exit_ || deliver_interrupt_ || !task_running_;
      });
      if (nudger_exit_) break;
      if (!task_running_) continue;
      // A sleeping annex thread takes the interrupt itself (SleepCallback).
      interrupt = deliver_interrupt_ && !sleeping_;
      deliver_interrupt_ = false;
      const auto since =
          std::chrono::steady_clock::now().time_since_epoch() -
          std::chrono::steady_clock::duration(last_yield_.load());
      if (!interrupt && since < stale) continue;  // the trace hook yields
      // No visit while tracemalloc traces: creating the visit's thread
      // state without the GIL is not safe then (version.h). The trace hook
      // still yields, and delivers interrupts to Python code that emits
      // trace events.
      if (TracemallocTracingNoGil() ||
          annex_interpreter_creation_would_deadlock()) {
        continue;
      }
      in_annex_ = true;
    }
    EnterAnnexBriefly(interrupt);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_annex_ = false;
    }
    cv_.notify_all();
  }
}

void AnnexRuntime::EnterAnnexBriefly(bool interrupt) {
  // A thread state of the annex, alive only for this visit: waiting for the
  // GIL with it makes CPython set the annex's drop request, which its eval
  // loop checks even in loops that emit no trace events. On the way the
  // GIL also reaches waiting target threads (the annex must hand it over
  // before it may take it back).
  PyThreadState* ts = PyThreadState_New(annex_interp_);
  if (ts == nullptr) return;
  PyEval_RestoreThread(ts);
  AnnexNoteOwnGilTake();  // the watchdog tells this take from the target's
  if (interrupt) {
    // Only while the flag is still pending: the trace hook (or a sleep)
    // may have taken it meanwhile, and each request raises once. The
    // annex thread cannot take it now: this visit holds the GIL.
    std::lock_guard<std::mutex> lock(mu_);
    if (task_running_ && !sleeping_ && interrupt_.exchange(false)) {
      async_pending_ = true;
      PyThreadState_SetAsyncExc(annex_thread_ident_, PyExc_KeyboardInterrupt);
    }
  }
  yields_.fetch_add(1, std::memory_order_relaxed);
  last_yield_.store(
      std::chrono::steady_clock::now().time_since_epoch().count());
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
}

void AnnexRuntime::ThreadMain() {
  annex_thread_ident_ = PyThread_get_thread_ident();
  thread_id_.store(std::this_thread::get_id());
  absl::Status status;
  SetActive(true);
  status = CreateInterpreters();
  SetActive(false);
  if (!status.ok()) {
    // Nothing to tear down: CreateInterpreters() undid its own work.
  } else if (options_.on_start) {
    // A failing on_start still leaves a complete annex to tear down.
    SetActive(true);
    {
      ScopedAnnexEntry entry(handoff_, ts_);
      status = options_.on_start(*this);
    }
    SetActive(false);
  }
  if (!status.ok() && ts_.target_ts != nullptr) {
    SetActive(true);
    DestroyInterpreters();
    SetActive(false);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    start_status_ = status;
    started_ = true;
  }
  running_.store(status.ok());
  cv_.notify_all();
  if (!status.ok()) return;

  for (;;) {
    std::shared_ptr<Task> task;
    bool suspend = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stop_requested_ || suspend_requested_ || !queue_.empty();
      });
      if (suspend_requested_ && !stop_requested_) {
        suspend = true;  // a fork() waits: before any queued work
      } else if (stop_requested_) {
        // Work not started yet fails: Stop() must not wait for a queue.
        for (const std::shared_ptr<Task>& t : queue_) {
          t->status = absl::UnavailableError("the annex is stopping");
          t->done = true;
        }
        queue_.clear();
        cv_.notify_all();
        break;
      } else {
        task = queue_.front();
        queue_.pop_front();
      }
    }
    if (suspend) {
      SuspendAnnex();
      continue;
    }
    if (ts_.annex_ts == nullptr) {  // not created again after a fork()
      std::lock_guard<std::mutex> lock(mu_);
      task->status = absl::UnavailableError(
          "the annex interpreter could not be created again after fork()");
      task->done = true;
      cv_.notify_all();
      continue;
    }
    SetActive(true);
    {
      ScopedAnnexEntry entry(handoff_, ts_);
      interrupt_.store(false);
      last_yield_.store(
          std::chrono::steady_clock::now().time_since_epoch().count());
      {
        std::lock_guard<std::mutex> lock(mu_);
        task_running_ = true;
        task->started = true;
        running_task_ = task.get();
        // A request left over from an earlier item must not hit this one;
        // RunWithin may have given up on this one while it was entering.
        deliver_interrupt_ = task->interrupt;
        async_pending_ = false;
        if (task->interrupt) interrupt_.store(true);
      }
      cv_.notify_all();
      (*task->work)(ts_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        task_running_ = false;
        running_task_ = nullptr;
      }
      if (PyErr_Occurred()) PyErr_Clear();  // work must not leak errors
      // An interrupt that arrived too late must not hit the next item.
      ConsumePendingInterrupt(ts_.annex_ts);
    }
    SetActive(false);
    {
      std::lock_guard<std::mutex> lock(mu_);
      task->done = true;
    }
    cv_.notify_all();
  }
  running_.store(false);
  {
    // Py_EndInterpreter requires the annex's last thread state: wait until
    // the nudger is out of the annex.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !in_annex_; });
  }
  SetActive(true);
  DestroyInterpreters();
  SetActive(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
}

absl::Status AnnexRuntime::Run(const Work& work) {
  if (InForkedChild()) {
    return absl::UnavailableError(
        "the annex does not exist in a child made by fork()");
  }
  if (OnAnnexThread()) {
    // Re-entrant use from inside a work item: the annex is already entered.
    work(ts_);
    return absl::OkStatus();
  }
  auto task = std::make_shared<Task>();
  task->work = &work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(task);
  }
  cv_.notify_all();
  WaitWithoutGil([&] {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return task->done; });
  });
  return task->status;
}

absl::Status AnnexRuntime::RunWithin(Work work, absl::Time deadline,
                                     const std::function<bool()>& cancelled,
                                     absl::Duration grace,
                                     RunOutcome* outcome) {
  RunOutcome ignored;
  if (outcome == nullptr) outcome = &ignored;
  *outcome = RunOutcome();
  if (InForkedChild()) {
    return absl::UnavailableError(
        "the annex does not exist in a child made by fork()");
  }
  if (OnAnnexThread()) {
    outcome->started = outcome->finished = true;
    work(ts_);
    return absl::OkStatus();
  }
  auto task = std::make_shared<Task>();
  task->owned = std::move(work);
  task->work = &task->owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(task);
  }
  cv_.notify_all();
  absl::Status result;
  WaitWithoutGil([&] {
    // Polls `cancelled` (it may take other locks, so never under mu_).
    constexpr auto kPoll = std::chrono::milliseconds(20);
    absl::Time give_up = absl::InfiniteFuture();
    bool interrupted = false;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, kPoll, [&] { return task->done; })) {
          outcome->started = true;
          outcome->finished = true;
          result = task->status;
          return;
        }
      }
      const absl::Time now = absl::Now();
      const bool cancel = cancelled && cancelled();
      if (!interrupted && (cancel || now >= deadline)) {
        absl::Status why = cancel ? absl::CancelledError("cancelled")
                                  : absl::DeadlineExceededError("timed out");
        std::lock_guard<std::mutex> lock(mu_);
        auto it = std::find(queue_.begin(), queue_.end(), task);
        if (it != queue_.end()) {  // not started: nothing ran
          queue_.erase(it);
          result = why;
          return;
        }
        if (task->done) continue;
        // It runs (or is about to enter the annex): interrupt it, ours only,
        // unless Interrupt() did already for the same cancel (the console
        // does both): one request, one KeyboardInterrupt, so that the
        // code's own cleanup (a finally, subprocess.run's kill) can run.
        interrupted = true;
        give_up = now + grace;
        result = why;
        const bool already = task->interrupt;
        task->interrupt = true;
        if (!already && running_task_ == task.get() && task_running_) {
          interrupt_.store(true);
          deliver_interrupt_ = true;
        }
        cv_.notify_all();
        continue;
      }
      if (interrupted && now >= give_up) {
        std::lock_guard<std::mutex> lock(mu_);
        if (task->done) continue;
        // Abandoned: the task keeps its work alive and finishes later.
        outcome->started = task->started;
        return;
      }
    }
  });
  return result;
}

absl::Status AnnexRuntime::Post(Work work) {
  if (InForkedChild()) {
    return absl::UnavailableError(
        "the annex does not exist in a child made by fork()");
  }
  auto task = std::make_shared<Task>();
  task->owned = std::move(work);
  task->work = &task->owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(std::move(task));
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void AnnexRuntime::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!task_running_) return;
    if (running_task_ != nullptr) running_task_->interrupt = true;
    interrupt_.store(true);
    deliver_interrupt_ = true;
  }
  cv_.notify_all();
}

std::vector<unsigned long> AnnexRuntime::own_target_thread_idents() const {
  // PyThread_get_thread_ident() is the pthread_t of the thread on Linux,
  // which std::thread's native handle is; the threads exist from Start() on
  // (joined ones keep their last handle, harmless as an identity).
  std::vector<unsigned long> idents;
  for (const std::thread* t : {&thread_, &nudger_}) {
    if (t->joinable()) {
      idents.push_back(static_cast<unsigned long>(
          const_cast<std::thread*>(t)->native_handle()));
    }
  }
  return idents;
}

absl::Status AnnexRuntime::Stop() { return StopImpl(/*from_atexit=*/false); }

absl::Status AnnexRuntime::StopImpl(bool from_atexit) {
  if (InForkedChild()) {
    // A child made by fork(): the annex was ended before the fork, none of
    // the runtime's threads exist here and its mutexes may be copies locked
    // by them. Forget the threads; touch nothing else.
    running_.store(false);
    if (thread_.joinable()) thread_.detach();
    if (nudger_.joinable()) nudger_.detach();
    if (yielder_.joinable()) yielder_.detach();
    return absl::OkStatus();
  }
  if (OnAnnexThread()) {
    return absl::FailedPreconditionError(
        "the annex cannot be stopped from its own thread");
  }
  if (!from_atexit) {
    // Detach the atexit callback first; if it is running right now, this
    // waits for it to finish stopping us.
    std::lock_guard<std::mutex> lock(atexit_link_->mu);
    atexit_link_->runtime = nullptr;
  }
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  {
    std::lock_guard<std::mutex> qlock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  WaitWithoutGil([&] {
    // Work still running is interrupted (KeyboardInterrupt in Python code,
    // including the annex's time.sleep), again every period until the
    // thread ends: Stop() does not wait on a loop of host-submitted code.
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, kStopInterruptPeriod, [&] {
            return finished_ || (started_ && !start_status_.ok());
          })) {
        break;
      }
      if (task_running_) {
        interrupt_.store(true);
        deliver_interrupt_ = true;
        lock.unlock();
        cv_.notify_all();
      }
    }
    thread_.join();
    {
      std::lock_guard<std::mutex> qlock(mu_);
      nudger_exit_ = true;
    }
    cv_.notify_all();
    if (nudger_.joinable()) nudger_.join();
    if (yielder_.joinable()) yielder_.join();
  });
  // Tasks queued after the thread left its loop cannot exist: Run() checks
  // stop_requested_ under mu_, and the loop drains the queue before exiting.
  return absl::OkStatus();
}

int AnnexRuntime::YieldHook(PyObject* self, PyFrameObject* frame, int what,
                            PyObject* arg) {
  auto* rt = static_cast<AnnexRuntime*>(PyCapsule_GetPointer(self, nullptr));
  if (rt == nullptr) {
    PyErr_Clear();
    return 0;
  }
  // Python code in the annex may have let go of the GIL and taken it back
  // inside CPython (a sleep, I/O): note the take for the watchdog.
  AnnexNoteOwnGilTake();
  if (rt->interrupt_.exchange(false)) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return -1;
  }
  auto now = std::chrono::steady_clock::now();
  if (now - std::chrono::steady_clock::time_point(
                std::chrono::steady_clock::duration(rt->last_yield_.load())) <
      rt->options_.yield_interval) {
    return 0;
  }
  // Hand the GIL to the target: nothing in CPython 3.11/3.12 asks the annex's
  // eval loop to drop it for a waiter of another interpreter.
  annex_swap_thread_state(rt->ts_.target_ts);
  PyEval_SaveThread();
  struct timespec pause;
  pause.tv_sec = 0;
  pause.tv_nsec =
      static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            rt->options_.yield_pause)
                            .count());
  nanosleep(&pause, nullptr);
  rt->handoff_.Acquire(rt->ts_.target_ts);
  annex_swap_thread_state(rt->ts_.annex_ts);
  rt->yields_.fetch_add(1, std::memory_order_relaxed);
  rt->last_yield_.store(
      std::chrono::steady_clock::now().time_since_epoch().count());
  return 0;
}

PyObject* AnnexRuntime::AtExitCallback(PyObject* self, PyObject*) {
  // Where: the target's main thread inside Py_FinalizeEx, GIL held.
  auto* holder = static_cast<std::shared_ptr<AtExitLink>*>(
      PyCapsule_GetPointer(self, kAtExitCapsule));
  if (holder == nullptr) return nullptr;
  std::shared_ptr<AtExitLink> link = *holder;
  // After fork() the child has a copy of the runtime but none of its
  // threads (and perhaps a copied, locked mutex): nothing to stop there.
  if (getpid() != link->owner) Py_RETURN_NONE;
  std::lock_guard<std::mutex> lock(link->mu);
  if (link->runtime != nullptr) {
    if (link->runtime->options_.before_atexit_stop) {
      ScopedGilRelease release;
      link->runtime->options_.before_atexit_stop();
    }
    link->runtime->StopImpl(/*from_atexit=*/true).IgnoreError();
    link->runtime = nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* AnnexRuntime::BeforeForkCallback(PyObject* self, PyObject*) {
  return ForkCallback(self, /*before=*/true);
}

PyObject* AnnexRuntime::AfterForkParentCallback(PyObject* self, PyObject*) {
  return ForkCallback(self, /*before=*/false);
}

PyObject* AnnexRuntime::ForkCallback(PyObject* self, bool before) {
  auto* holder = static_cast<std::shared_ptr<AtExitLink>*>(
      PyCapsule_GetPointer(self, kAtExitCapsule));
  if (holder == nullptr) return nullptr;
  std::shared_ptr<AtExitLink> link = *holder;
  if (getpid() != link->owner) Py_RETURN_NONE;  // a child forking again
  std::lock_guard<std::mutex> lock(link->mu);
  if (link->runtime != nullptr) {
    if (before) {
      link->runtime->SuspendForFork();
    } else {
      link->runtime->ResumeAfterFork();
    }
  }
  Py_RETURN_NONE;
}

void AnnexRuntime::SuspendForFork() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_ || finished_ || suspend_requested_) return;
    suspend_requested_ = true;
  }
  cv_.notify_all();
  // The annex thread needs the GIL to end the annex interpreter.
  PyThreadState* saved = PyEval_SaveThread();
  auto ended = [&] { return suspended_ || finished_; };
  bool done;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done = cv_.wait_for(lock, kForkGrace, ended);
  }
  if (!done) {
    // Python code of the console may run in the annex: interrupt it.
    Interrupt();
    std::unique_lock<std::mutex> lock(mu_);
    done = cv_.wait_for(lock, kForkPatience, ended);
  }
  if (!done) {
    std::fprintf(stderr,
                 "annex: the annex interpreter did not end before fork(); "
                 "the child may hang in CPython's PyOS_AfterFork_Child\n");
  }
  PyEval_RestoreThread(saved);
}

void AnnexRuntime::ResumeAfterFork() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!suspend_requested_) return;
    suspend_requested_ = false;
  }
  // The annex thread creates the new interpreter once it gets the GIL (the
  // forking thread holds it now): nothing to wait for here.
  cv_.notify_all();
}

void AnnexRuntime::RegisterTargetAtFork() {
  static PyMethodDef before_def = {
      "_annex_before_fork", &AnnexRuntime::BeforeForkCallback, METH_NOARGS,
      "Ends the Annex interpreter before fork()."};
  static PyMethodDef parent_def = {
      "_annex_after_fork_parent", &AnnexRuntime::AfterForkParentCallback,
      METH_NOARGS, "Creates the Annex interpreter again after fork()."};
  ScopedErrorPreserver keep_error;
  PyObject* modules = PyImport_GetModuleDict();              // borrowed
  PyObject* posix = PyDict_GetItemString(modules, "posix");  // borrowed
  if (posix == nullptr) return;  // no fork() without posix either
  PyObject* lists_before[3];
  ForkerLists(target_, lists_before);
  PyObject* funcs[2] = {nullptr, nullptr};
  PyMethodDef* defs[2] = {&before_def, &parent_def};
  for (int i = 0; i < 2; ++i) {
    auto* holder = new std::shared_ptr<AtExitLink>(atexit_link_);
    PyObject* capsule =
        PyCapsule_New(holder, kAtExitCapsule, &DeleteLinkCapsule);
    if (capsule == nullptr) {
      delete holder;
      break;
    }
    funcs[i] = PyCFunction_New(defs[i], capsule);
    Py_DECREF(capsule);
    if (funcs[i] == nullptr) break;
    // Refers only to a capsule: no cycle, so it can stay off the gc lists.
    PyObject_GC_UnTrack(funcs[i]);
  }
  if (funcs[0] != nullptr && funcs[1] != nullptr) {
    PyObject* reg = PyObject_GetAttrString(posix, "register_at_fork");
    PyObject* args = PyTuple_New(0);
    PyObject* kwargs = Py_BuildValue("{sOsO}", "before", funcs[0],
                                     "after_in_parent", funcs[1]);
    PyObject* r =
        (reg && args && kwargs) ? PyObject_Call(reg, args, kwargs) : nullptr;
    if (r != nullptr) {
      fork_funcs_[0] = Py_NewRef(funcs[0]);
      fork_funcs_[1] = Py_NewRef(funcs[1]);
    }
    Py_XDECREF(r);
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(reg);
  }
  Py_XDECREF(funcs[0]);
  Py_XDECREF(funcs[1]);
  PyErr_Clear();
  // Lists the registration created in the interpreter state: alive as long
  // as the target, referenced by no root. Off the gc lists and hidden they
  // leave gc.get_objects() and heapu() as they were.
  PyObject* lists_after[3];
  ForkerLists(target_, lists_after);
  for (int i = 0; i < 3; ++i) {
    PyObject* o = lists_after[i];
    if (o == nullptr || o == lists_before[i] || !PyObject_GC_IsTracked(o)) {
      continue;
    }
    created_forker_list_[i] = true;
    PyObject_GC_UnTrack(o);
    untracked_.push_back(Py_NewRef(o));
    target_footprint_.push_back(reinterpret_cast<uintptr_t>(o));
  }
}

void AnnexRuntime::UnregisterTargetAtFork() {
  // os.register_at_fork has no way back: take our functions out of the
  // interpreter's lists by identity (no Python code runs), and drop a list
  // the registration created once it is empty again.
  PyObject* lists[3];
  ForkerLists(target_, lists);
  for (int i = 0; i < 3; ++i) {
    PyObject* list = lists[i];
    if (list == nullptr || !PyList_Check(list)) continue;
    for (Py_ssize_t k = PyList_GET_SIZE(list) - 1; k >= 0; --k) {
      PyObject* item = PyList_GET_ITEM(list, k);
      if (item != nullptr &&
          (item == fork_funcs_[0] || item == fork_funcs_[1])) {
        if (PySequence_DelItem(list, k) < 0) PyErr_Clear();
      }
    }
    if (created_forker_list_[i] && PyList_GET_SIZE(list) == 0) {
      ClearForkerList(target_, i);  // still held by untracked_
    }
    created_forker_list_[i] = false;
  }
  Py_CLEAR(fork_funcs_[0]);
  Py_CLEAR(fork_funcs_[1]);
}

void AnnexRuntime::RegisterTargetAtExit() {
  static PyMethodDef def = {"_annex_stop", &AnnexRuntime::AtExitCallback,
                            METH_NOARGS,
                            "Stops the Annex monitor before finalization."};
  {
    std::lock_guard<std::mutex> lock(atexit_link_->mu);
    atexit_link_->runtime = this;
  }
  PyObject* modules = PyImport_GetModuleDict();
  const bool had_atexit = PyDict_GetItemString(modules, "atexit") != nullptr;
  PyObject* atexit = PyImport_ImportModule("atexit");
  if (atexit == nullptr) {
    PyErr_Clear();
    return;
  }
  auto* holder = new std::shared_ptr<AtExitLink>(atexit_link_);
  PyObject* capsule = PyCapsule_New(holder, kAtExitCapsule, &DeleteLinkCapsule);
  if (capsule == nullptr) delete holder;
  PyObject* func = capsule ? PyCFunction_New(&def, capsule) : nullptr;
  Py_XDECREF(capsule);
  if (func != nullptr) {
    // The function refers only to a capsule: it cannot be part of a cycle,
    // so untracking it keeps the target's gc lists exactly as they were.
    PyObject_GC_UnTrack(func);
    PyObject* r = PyObject_CallMethod(atexit, "register", "O", func);
    if (r == nullptr) {
      PyErr_Clear();
      Py_CLEAR(func);
    }
    Py_XDECREF(r);
  } else {
    PyErr_Clear();
  }
  atexit_func_ = func;
  if (!had_atexit) {
    // Keep the module we imported: out of sys.modules it would become
    // cyclic garbage (module <-> its functions) in the target's gc lists.
    // Held, it is alive, used again by Stop(), and hidden from heap views.
    atexit_module_ = Py_NewRef(atexit);
    UntrackFootprint(atexit);
  }
  Py_DECREF(atexit);
  // The callbacks live in the interpreter's atexit state, not in the module:
  // if the host had not imported atexit, leave its sys.modules as it was.
  if (!had_atexit && PyDict_DelItemString(modules, "atexit") < 0) PyErr_Clear();
}

void AnnexRuntime::UntrackFootprint(PyObject* module) {
  // What importing a builtin module creates: the module, its dict, its
  // functions (which point back at it), its spec and the spec's dict. All
  // are kept alive by the runtime's reference until Stop(), so taking them
  // off the gc lists cannot make anything uncollectable meanwhile.
  std::vector<PyObject*> candidates = {module};
  PyObject* dict = PyModule_GetDict(module);  // borrowed
  if (dict != nullptr) {
    candidates.push_back(dict);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
      if (PyCFunction_Check(value) && PyCFunction_GET_SELF(value) == module) {
        candidates.push_back(value);
      }
    }
    PyObject* spec = PyDict_GetItemString(dict, "__spec__");
    if (spec != nullptr) {
      candidates.push_back(spec);
      // What only the spec references (its dict, an empty submodule list):
      // found through tp_traverse, which also sees managed dicts and
      // inline attribute values.
      traverseproc traverse = Py_TYPE(spec)->tp_traverse;
      if (traverse != nullptr) {
        traverse(
            spec,
            [](PyObject* o, void* arg) -> int {
              if (o != nullptr && Py_REFCNT(o) == 1 && !PyType_Check(o)) {
                static_cast<std::vector<PyObject*>*>(arg)->push_back(o);
              }
              return 0;
            },
            &candidates);
      }
    }
  }
  for (PyObject* o : candidates) {
    if (!PyObject_IS_GC(o) || !PyObject_GC_IsTracked(o)) continue;
    PyObject_GC_UnTrack(o);
    untracked_.push_back(Py_NewRef(o));
    target_footprint_.push_back(reinterpret_cast<uintptr_t>(o));
  }
}

void AnnexRuntime::UnregisterTargetAtExit() {
  ScopedErrorPreserver keep_error;
  // During finalization the callback is running now; the list is cleared by
  // CPython after it, and modifying it meanwhile is unsafe.
  if (atexit_func_ != nullptr && !IsFinalizing()) {
    PyObject* atexit = atexit_module_ != nullptr
                           ? Py_NewRef(atexit_module_)
                           : PyImport_ImportModule("atexit");
    if (atexit != nullptr) {
      PyObject* r =
          PyObject_CallMethod(atexit, "unregister", "O", atexit_func_);
      Py_XDECREF(r);
      Py_DECREF(atexit);
    }
    PyErr_Clear();
  }
  Py_CLEAR(atexit_func_);  // released with the target current (rule 10)
  UnregisterTargetAtFork();
  // Give the footprint back to the target's gc before letting it go: the
  // module and its functions form a cycle only the gc can free.
  for (PyObject* o : untracked_) {
    PyObject_GC_Track(o);
    Py_DECREF(o);
  }
  untracked_.clear();
  target_footprint_.clear();
  Py_CLEAR(atexit_module_);
}

}  // namespace annex::python
