// The annex interpreter and the thread it lives on.
//
// AnnexRuntime starts a thread that creates a shared-GIL sub-interpreter (the
// annex) beside the host's main interpreter (the target), runs work items in
// it, and ends it on the same thread before the target finalizes
// (docs/design.md rules 1, 2, 7; 3.12 requires that an interpreter ends on the
// thread that created it).
//
//   auto runtime = AnnexRuntime::Start({});        // after Py_Initialize()
//   (*runtime)->Run([](const ThreadStates& ts) {    // annex current, GIL held
//     PyRun_SimpleString("print('hello from the annex')");
//   });
//   (*runtime)->Stop();                             // before Py_FinalizeEx()
//
// If the host finalizes without Stop(), an atexit callback registered in the
// target stops the annex first.
//
// fork(): CPython cannot fork a process that has a sub-interpreter (the
// child hangs or aborts in PyOS_AfterFork_Child, gh-101437, gh-112275). The
// runtime therefore registers with the target's os.register_at_fork: before
// a fork the annex interpreter ends (on_stop runs; work waits), and after it
// the parent creates a new one (on_start runs again) while the child has no
// annex at all (Stop() there only forgets the parent's threads).
//
// CPython releases the GIL inside annex code too (imports read files, sleeps,
// I/O) and re-takes it with the annex's thread state, which on 3.11 and 3.12
// never asks a busy target thread to let go. While annex work is active a
// "nudger" thread, with a thread state of its own in the target, therefore
// queues for the GIL through the hand-off every couple of milliseconds: it
// is a waiter the target does serve, and it lets go at once when served.
// The reverse is a "yielder" thread: while a work item runs and the trace
// hook has not yielded for a while (3.11 compiles `while True: pass` to one
// jump that emits no trace events), it waits for the GIL with a short-lived
// annex thread state, which makes CPython ask the annex's eval loop to let
// go; it also delivers Interrupt() as an asynchronous exception that way.
// Python code running in the annex yields the GIL to the target every
// `yield_interval` (a C trace hook on the annex thread), because on 3.11
// and 3.12 nothing else asks it to.
//
// One class, one mutex, several source files by concept: annex_runtime.cc
// (start, the annex thread's loop and work queue, stop), annex_fairness.cc
// (yield hook, nudger, yielder), annex_builtins.cc (the annex's
// interruptible sleep and waits, its input()), annex_fork.cc (fork) and
// annex_atexit.cc (the atexit safety net); target_footprint.h holds what
// the runtime keeps alive in the target.
#pragma once

#include <Python.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "monitor/python/guards.h"
#include "monitor/python/handoff.h"
#include "monitor/python/target_footprint.h"

namespace annex::python {

class AnnexRuntime;

struct AnnexOptions {
  // How long Python code in the annex may hold the GIL before it hands it
  // to the target, and how long it then stays out.
  std::chrono::microseconds yield_interval = std::chrono::milliseconds(5);
  std::chrono::microseconds yield_pause = std::chrono::microseconds(200);
  // Runs on the annex thread right after an annex interpreter exists, with
  // the annex current and the GIL held: at start (an error aborts Start()
  // and is returned by it) and again after each fork() of the target.
  std::function<absl::Status(AnnexRuntime&)> on_start;
  // Runs on the annex thread before an annex interpreter ends (at stop and
  // before each fork() of the target), annex current: release every annex
  // object held outside the interpreter here.
  std::function<void(AnnexRuntime&)> on_stop;
  // Runs when the target finalizes without Stop(), on the target's main
  // thread inside Py_FinalizeEx, GIL released, before the annex is stopped:
  // the place to stop whatever feeds the annex work (e.g. the console).
  std::function<void()> before_atexit_stop;
};

class AnnexRuntime {
 public:
  using Work = std::function<void(const ThreadStates&)>;

  // Starts the annex thread and waits until the annex interpreter exists.
  // Where: any thread; the caller may hold the GIL (it is released while
  // waiting). Errors: FailedPrecondition when Python is not initialized,
  // its version does not match this build, when called with a
  // sub-interpreter's thread state current (e.g. from annex code), or
  // (3.11 only) tracemalloc is
  // tracing, which deadlocks interpreter creation inside CPython; Internal when
  // CPython refused to create the interpreter; whatever `on_start` returned.
  static absl::StatusOr<std::unique_ptr<AnnexRuntime>> Start(
      AnnexOptions options);

  // Stops (see Stop()) and frees. Where: as Stop().
  ~AnnexRuntime();

  AnnexRuntime(const AnnexRuntime&) = delete;
  AnnexRuntime& operator=(const AnnexRuntime&) = delete;

  // Ends the annex interpreter and joins its thread; queued work not yet
  // started fails with Unavailable, and work that runs is interrupted (as
  // Interrupt(), every 100 ms until it ends): Python code of the annex stops
  // at once unless it catches KeyboardInterrupt every time; C++ work ends
  // by itself. Harmless when already stopped (OK).
  // Where: any thread but the annex thread (FailedPrecondition there); the
  // caller may hold the GIL (released while joining). Must return before the
  // target finalizes.
  absl::Status Stop() ABSL_LOCKS_EXCLUDED(stop_mu_, mu_);

  // Runs `work` on the annex thread with the annex entered (GIL held, annex
  // current) and waits for it. Called on the annex thread itself, runs
  // inline. Where: any thread; a caller holding the GIL releases it while
  // waiting. Errors: Unavailable once stopped.
  absl::Status Run(const Work& work) ABSL_LOCKS_EXCLUDED(mu_);

  // What RunWithin() saw of its work item.
  struct RunOutcome {
    bool started = false;   // the work item began on the annex thread
    bool finished = false;  // ... and ended before RunWithin returned
  };
  // Run() for callers that must not wait without bound. Waits until
  // `deadline`, or until `cancelled` (may be empty; polled every 20 ms from
  // the caller's thread, never under the runtime's lock) returns true.
  // Then a work item not started yet is dropped (nothing ran); one that
  // runs is interrupted as by Interrupt() and waited for `grace` more. If
  // it still has not finished (C++ work, or the annex waits for a GIL that
  // a target thread does not let go), RunWithin returns anyway and the
  // work finishes on the annex thread later: the runtime owns `work`,
  // which must therefore own or share whatever it touches. Returns OK when
  // the work finished before the deadline or cancellation, else
  // DeadlineExceeded or Cancelled (see `outcome` for what happened);
  // Unavailable once stopped, and when the runtime stopped before the item
  // started (it is dropped unrun: finished, not started). Where: any thread; a
  // caller holding the GIL releases it while waiting. On the annex thread it
  // runs inline, without limit.
  absl::Status RunWithin(Work work, absl::Time deadline,
                         const std::function<bool()>& cancelled,
                         absl::Duration grace, RunOutcome* outcome = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `work` and returns at once (it owns what it touches); it runs
  // after the work queued before it, or never if the runtime stops first.
  // Where: any thread. Unavailable once stopped.
  absl::Status Post(Work work) ABSL_LOCKS_EXCLUDED(mu_);

  // Makes Python code running in the current work item raise
  // KeyboardInterrupt (C++ work is not interrupted; a request made while no
  // work runs is dropped). The annex's time.sleep is replaced at start by
  // one that this ends at once; other blocking calls (lock waits, socket
  // reads) end only when they return to Python code. Delivered by the trace
  // hook, or, for loops that emit no trace events (3.11's one-instruction
  // `while True: pass`), as an asynchronous exception set by the nudger thread,
  // which waits for the GIL with a short-lived thread state of the annex so
  // that CPython asks the annex's eval loop to let go. Where: any thread, GIL
  // not needed.
  void Interrupt() ABSL_LOCKS_EXCLUDED(mu_);
  // Takes an Interrupt() for the work item running now that was not yet
  // delivered to Python code: true once per request, which is then not
  // raised again by the trace hook. C++ loops of the work item poll it to
  // stop early, and report the stop themselves (heap questions raise
  // KeyboardInterrupt; heap/question_stop.h). Where: the annex thread.
  bool TakeInterrupt() { return interrupt_.exchange(false); }

  // Where: any thread.
  bool running() const { return running_.load() && !InForkedChild(); }
  bool OnAnnexThread() const;
  // Work items queued and not started yet. Where: any thread.
  size_t queued() ABSL_LOCKS_EXCLUDED(mu_);

  PyInterpreterState* target() const { return target_; }
  PyInterpreterState* annex() const { return annex_interp_; }
  // Valid while running; use only on the annex thread.
  const ThreadStates& thread_states() const { return ts_; }
  GilHandoff& handoff() { return handoff_; }

  // Addresses of the objects Annex itself keeps alive in the target: the
  // `atexit` module when the host had not imported it, with its dict,
  // functions and spec. The runtime holds them (out of sys.modules they
  // would be cyclic garbage) and keeps them off the gc lists until Stop(),
  // so gc.get_objects() and heapu() stay as they were; heap views also
  // hide them. Valid while running. Where: any thread after Start().
  const std::vector<uintptr_t>& target_footprint() const {
    return footprint_.addresses();
  }

  // Thread identifiers (threading.get_ident() values) of the runtime's own
  // threads that own a thread state in the target: the annex thread
  // (`target_ts`) and, on 3.11/3.12, the nudger. They have no Python frames;
  // stack dumps of the target leave them out. Where: any thread after
  // Start().
  std::vector<unsigned long> own_target_thread_idents() const;

  // How often the annex yielded the GIL to the target. Where: any thread.
  long yields() const { return yields_.load(std::memory_order_relaxed); }
  // How many times the annex interpreter was ended for a fork() of the
  // target and created again. Where: any thread.
  long fork_restarts() const { return fork_restarts_.load(); }

 private:
  struct Task;
  struct AtExitLink;

  // annex_runtime.cc: lifecycle and work queue.

  explicit AnnexRuntime(AnnexOptions options);
  void ThreadMain() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CreateInterpreters();  // annex thread, no GIL
  void DestroyInterpreters();         // annex thread, no GIL
  // Annex thread, GIL held, target_ts current; leaves it current. Creates
  // the annex interpreter and installs the yield hook.
  absl::Status NewAnnex();
  // Annex thread, GIL held, annex current; leaves target_ts current.
  void EndAnnex();
  absl::Status StopImpl(bool from_atexit) ABSL_LOCKS_EXCLUDED(stop_mu_, mu_);

  // annex_fairness.cc: the GIL goes back and forth while annex work runs.

  void NudgerMain() ABSL_LOCKS_EXCLUDED(mu_);
  void YielderMain() ABSL_LOCKS_EXCLUDED(mu_);
  void SetActive(bool active) ABSL_LOCKS_EXCLUDED(mu_);
  // Yielder thread, no GIL.
  void EnterAnnexBriefly(bool interrupt) ABSL_LOCKS_EXCLUDED(mu_);
  static int YieldHook(PyObject* self, PyFrameObject* frame, int what,
                       PyObject* arg);  // annex thread, GIL, annex current

  // annex_builtins.cc: the annex's builtins that Interrupt() ends.

  // Replaces the annex's time.sleep by SleepCallback. Annex thread, GIL
  // held, annex current.
  void InstallInterruptibleSleep();
  // Makes the annex's blocking lock waits (threading's locks, conditions,
  // events, queue), socket waits (a blocking socket's recv*, accept and
  // send* wait for readiness first), select/poll/epoll, a blocking
  // os.waitpid and a blocking TLS socket's reads and handshake wait in
  // slices of kInterruptSlice, so the yield hook can end them with
  // KeyboardInterrupt on Interrupt() or Stop(). Installs only an import
  // hook: the waits (py/annex_waits.py) are patched in when the annex
  // first imports threading, socket, select, subprocess or ssl, so an
  // annex that never does imports nothing more. Only the annex's own
  // module objects change.
  // Annex thread, GIL held, annex current.
  void InstallInterruptibleWaits();
  // Replaces the annex's builtins.input by one that refuses with a
  // RuntimeError: the process's stdin is the watched program's. Annex
  // thread, GIL held, annex current.
  void InstallAnnexInput();
  // time.sleep of the annex: waits on cv_ for Interrupt() or Stop().
  // Where: any thread of the annex interpreter, GIL held (released while
  // it waits).
  static PyObject* SleepCallback(PyObject* self, PyObject* seconds);

  // annex_fork.cc: fork() of the target.

  // os.register_at_fork callbacks. Where: the forking target thread, GIL
  // held, target current.
  static PyObject* BeforeForkCallback(PyObject* self, PyObject* unused);
  static PyObject* AfterForkParentCallback(PyObject* self, PyObject* unused);
  static PyObject* ForkCallback(PyObject* self, bool before);
  void RegisterTargetAtFork();    // annex thread, GIL, target current
  void UnregisterTargetAtFork();  // annex thread, GIL, target current
  // Forking thread, GIL held (released while it waits for the annex thread).
  void SuspendForFork() ABSL_LOCKS_EXCLUDED(mu_);
  // Forking thread (parent), GIL held.
  void ResumeAfterFork() ABSL_LOCKS_EXCLUDED(mu_);
  // Annex thread, no GIL: ends the annex interpreter, waits for the resume,
  // creates a new one.
  void SuspendAnnex() ABSL_LOCKS_EXCLUDED(mu_);

  // annex_atexit.cc: the safety net in the target.

  // Where: the target's main thread inside Py_FinalizeEx, GIL held.
  static PyObject* AtExitCallback(PyObject* self, PyObject* unused);
  void RegisterTargetAtExit();    // annex thread, GIL, target current
  void UnregisterTargetAtExit();  // annex thread, GIL, target current

  // True in a child made by fork(): none of the runtime's threads exist.
  bool InForkedChild() const { return getpid() != owner_pid_; }

  AnnexOptions options_;
  GilHandoff handoff_;
  ThreadStates ts_;
  // ts_.target_runs points here (guards.h TargetMark).
  std::atomic<uint64_t> target_runs_{0};
  PyInterpreterState* target_ = nullptr;
  PyInterpreterState* annex_interp_ = nullptr;
  std::thread thread_;
  std::thread nudger_;   // 3.11/3.12: waits for the GIL as the target
  std::thread yielder_;  // waits for the GIL as the annex
  PyThreadState* nudge_ts_ = nullptr;    // nudger thread only
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // annex work running
  bool nudger_exit_ ABSL_GUARDED_BY(mu_) = false;
  bool task_running_ ABSL_GUARDED_BY(mu_) = false;       // a work item runs
  bool deliver_interrupt_ ABSL_GUARDED_BY(mu_) = false;  // for the nudger
  // The annex thread waits in the annex's time.sleep (SleepCallback), which
  // takes a pending interrupt itself: the yielder leaves it alone then.
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;
  // The yielder raised the pending interrupt as an async exception; a
  // sleep that starts before the eval loop raises it ends at once.
  bool async_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool in_annex_ ABSL_GUARDED_BY(mu_) = false;  // yielder holds an annex ts
  unsigned long annex_thread_ident_ = 0;
  std::atomic<std::thread::id> thread_id_{};

  // Every wait on this state is a Mutex::Await on a Condition over it:
  // Abseil re-evaluates waiters' conditions whenever mu_ is released.
  absl::Mutex mu_;
  std::deque<std::shared_ptr<Task>> queue_ ABSL_GUARDED_BY(mu_);
  Task* running_task_ ABSL_GUARDED_BY(mu_) = nullptr;  // the item that runs
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // thread finished start-up
  absl::Status start_status_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> running_{false};
  std::atomic<bool> interrupt_{false};
  std::atomic<long> yields_{0};
  std::atomic<long> fork_restarts_{0};
  const pid_t owner_pid_;
  bool suspend_requested_ ABSL_GUARDED_BY(mu_) = false;  // a fork is coming
  bool suspended_ ABSL_GUARDED_BY(mu_) = false;          // no annex interpreter
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // the annex thread ended
  std::atomic<std::chrono::steady_clock::rep> last_yield_{0};

  absl::Mutex stop_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes Stop() callers
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;

  TargetFootprint footprint_;  // written before Start returns
  std::shared_ptr<AtExitLink> atexit_link_;
  PyObject* atexit_func_ = nullptr;    // target object; annex thread only
  PyObject* atexit_module_ = nullptr;  // target object; annex thread only
  // The registered at-fork functions (target objects; annex thread only) and
  // which of the interpreter's forker lists the registration created.
  PyObject* fork_funcs_[2] = {nullptr, nullptr};
  bool created_forker_list_[3] = {false, false, false};
};

}  // namespace annex::python
