// The annex runtime's lifecycle: start, the annex thread's loop and its
// work queue (Run, RunWithin, Post, Interrupt), creating and ending the
// interpreters, and Stop(). The fairness threads live in annex_fairness.cc,
// the annex's interruptible builtins in annex_builtins.cc, fork() in
// annex_fork.cc, and the atexit safety net in annex_atexit.cc.
#include "monitor/python/annex_runtime.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "monitor/python/annex_runtime_parts.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/python/gilstate_bind.h"
#include "monitor/python/version.h"

namespace annex::python {

using runtime_internal::WaitWithoutGil;

namespace {

// 3.13 asks the GIL holder itself to drop the GIL, whatever interpreter the
// waiter belongs to; older versions need the nudger (see the header).
constexpr bool kNeedsTargetNudges = PY_VERSION_HEX < 0x030D0000;
// How often Stop() interrupts work that is still running.
constexpr absl::Duration kStopInterruptPeriod = absl::Milliseconds(100);

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
    absl::MutexLock lock(&rt->mu_);
    rt->thread_ = std::thread([r = rt.get()] { r->ThreadMain(); });
    rt->thread_id_.store(rt->thread_.get_id());
    if (kNeedsTargetNudges) {
      rt->nudger_ = std::thread([r = rt.get()] { r->NudgerMain(); });
    }
    rt->yielder_ = std::thread([r = rt.get()] { r->YielderMain(); });
  }
  absl::Status status;
  WaitWithoutGil([&] {
    absl::MutexLock lock(&rt->mu_);
    rt->mu_.Await(absl::Condition(&rt->started_));
    status = rt->start_status_;
  });
  if (!status.ok()) {
    WaitWithoutGil([&] {
      rt->thread_.join();
      {
        absl::MutexLock lock(&rt->mu_);
        rt->nudger_exit_ = true;
      }
      if (rt->nudger_.joinable()) rt->nudger_.join();
      if (rt->yielder_.joinable()) rt->yielder_.join();
    });
    absl::MutexLock lock(&rt->stop_mu_);
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
  ts_.target_runs = &target_runs_;
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
    absl::MutexLock lock(&mu_);
    // Before the unlock, which lets Start() return: Run() reads it.
    running_.store(status.ok());
    start_status_ = status;
    started_ = true;
  }
  if (!status.ok()) return;

  for (;;) {
    std::shared_ptr<Task> task;
    bool suspend = false;
    {
      absl::MutexLock lock(&mu_);
      auto has_news = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_requested_ || suspend_requested_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&has_news));
      if (suspend_requested_ && !stop_requested_) {
        suspend = true;  // a fork() waits: before any queued work
      } else if (stop_requested_) {
        // Work not started yet fails: Stop() must not wait for a queue.
        for (const std::shared_ptr<Task>& t : queue_) {
          t->mu.AssertHeld();
          t->status = absl::UnavailableError("the annex is stopping");
          t->done = true;
        }
        queue_.clear();
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
      absl::MutexLock lock(&mu_);
      task->mu.AssertHeld();
      task->status = absl::UnavailableError(
          "the annex interpreter could not be created again after fork()");
      task->done = true;
      continue;
    }
    SetActive(true);
    {
      ScopedAnnexEntry entry(handoff_, ts_);
      interrupt_.store(false);
      last_yield_.store(
          std::chrono::steady_clock::now().time_since_epoch().count());
      {
        absl::MutexLock lock(&mu_);
        task->mu.AssertHeld();
        task_running_ = true;
        task->started = true;
        running_task_ = task.get();
        // A request left over from an earlier item must not hit this one;
        // RunWithin may have given up on this one while it was entering.
        deliver_interrupt_ = task->interrupt;
        async_pending_ = false;
        if (task->interrupt) interrupt_.store(true);
      }
      (*task->work)(ts_);
      {
        absl::MutexLock lock(&mu_);
        task_running_ = false;
        running_task_ = nullptr;
      }
      if (PyErr_Occurred()) PyErr_Clear();  // work must not leak errors
      // An interrupt that arrived too late must not hit the next item.
      ConsumePendingInterrupt(ts_.annex_ts);
    }
    SetActive(false);
    {
      absl::MutexLock lock(&mu_);
      task->mu.AssertHeld();
      task->done = true;
    }
  }
  running_.store(false);
  {
    // Py_EndInterpreter requires the annex's last thread state: wait until
    // the nudger is out of the annex.
    absl::MutexLock lock(&mu_);
    auto out = [this]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !in_annex_; };
    mu_.Await(absl::Condition(&out));
  }
  SetActive(true);
  DestroyInterpreters();
  SetActive(false);
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }
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
  auto task = std::make_shared<Task>(mu_);
  task->work = &work;
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(task);
  }
  absl::Status status;
  WaitWithoutGil([&] {
    absl::MutexLock lock(&mu_);
    task->mu.AssertHeld();
    mu_.Await(absl::Condition(&task->done));
    status = task->status;
  });
  return status;
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
  auto task = std::make_shared<Task>(mu_);
  task->owned = std::move(work);
  task->work = &task->owned;
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(task);
  }
  absl::Status result;
  WaitWithoutGil([&] {
    // Polls `cancelled` (it may take other locks, so never under mu_).
    constexpr absl::Duration kPoll = absl::Milliseconds(20);
    absl::Time give_up = absl::InfiniteFuture();
    bool interrupted = false;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        task->mu.AssertHeld();
        if (mu_.AwaitWithTimeout(absl::Condition(&task->done), kPoll)) {
          // Done without starting when the runtime stopped first (its
          // status then says so): the work never ran.
          outcome->started = task->started;
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
        absl::MutexLock lock(&mu_);
        task->mu.AssertHeld();
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
        continue;
      }
      if (interrupted && now >= give_up) {
        absl::MutexLock lock(&mu_);
        task->mu.AssertHeld();
        if (task->done) continue;
        // Abandoned: the task keeps its work alive and finishes later.
        outcome->started = task->started;
        return;
      }
    }
  });
  return result;
}

size_t AnnexRuntime::queued() {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

absl::Status AnnexRuntime::Post(Work work) {
  if (InForkedChild()) {
    return absl::UnavailableError(
        "the annex does not exist in a child made by fork()");
  }
  auto task = std::make_shared<Task>(mu_);
  task->owned = std::move(work);
  task->work = &task->owned;
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_ || !running_.load()) {
      return absl::UnavailableError("the annex is stopped");
    }
    queue_.push_back(std::move(task));
  }
  return absl::OkStatus();
}

void AnnexRuntime::Interrupt() {
  absl::MutexLock lock(&mu_);
  if (!task_running_) return;
  if (running_task_ != nullptr) {
    running_task_->mu.AssertHeld();
    running_task_->interrupt = true;
  }
  interrupt_.store(true);
  deliver_interrupt_ = true;
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
    absl::MutexLock lock(&atexit_link_->mu);
    atexit_link_->runtime = nullptr;
  }
  absl::MutexLock lock(&stop_mu_);
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  {
    absl::MutexLock qlock(&mu_);
    stop_requested_ = true;
  }
  WaitWithoutGil([&] {
    // Work still running is interrupted (KeyboardInterrupt in Python code,
    // including the annex's time.sleep), again every period until the
    // thread ends: Stop() does not wait on a loop of host-submitted code.
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return finished_ || (started_ && !start_status_.ok());
    };
    for (;;) {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&ended), kStopInterruptPeriod)) {
        break;
      }
      if (task_running_) {
        interrupt_.store(true);
        deliver_interrupt_ = true;
      }
    }
    thread_.join();
    {
      absl::MutexLock qlock(&mu_);
      nudger_exit_ = true;
    }
    if (nudger_.joinable()) nudger_.join();
    if (yielder_.joinable()) yielder_.join();
  });
  // Tasks queued after the thread left its loop cannot exist: Run() checks
  // stop_requested_ under mu_, and the loop drains the queue before exiting.
  return absl::OkStatus();
}

}  // namespace annex::python
