// The public Monitor: an annex runtime, its glue session, and the console.
#include "monitor/monitor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glue/annex_access.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/memory_budget.h"
#include "glue/session.h"
#include "monitor/console/server.h"
#include "monitor/heap/lanes.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/guards.h"
#include "monitor/python/version.h"
#include "monitor/services/annex_console.h"
#include "monitor/services/heap_recorder.h"
#include "monitor/services/watchdog_heap.h"

namespace annex {

struct Monitor::State {
  absl::Mutex mu;  // serializes Start/Stop
  std::unique_ptr<glue::Session> session;
  std::unique_ptr<python::AnnexRuntime> runtime;
  std::unique_ptr<services::AnnexConsole> console_executor;
  // Namespaces of ExecInAnnex(code, namespace_id): the host's own, each a
  // client of this executor (its namespace id is the client id).
  std::unique_ptr<services::AnnexConsole> host_executor;
  absl::Mutex console_mu;
  std::unique_ptr<console::Server> console ABSL_GUARDED_BY(console_mu);
  std::unique_ptr<watchdog::Watchdog> watchdog ABSL_GUARDED_BY(console_mu);
  std::unique_ptr<services::WatchdogHeap> watchdog_heap
      ABSL_GUARDED_BY(console_mu);
  std::unique_ptr<services::HeapRecorder> recorder ABSL_GUARDED_BY(console_mu);
  const pid_t owner = getpid();  // a child made by fork() is not the owner
  // The host's calls in flight (ExecInAnnex, ReleaseAnnexNamespace,
  // HeapSummary, Interrupt, running(): any host thread). Stop() closes
  // them first and, once the runtime has stopped (which ends or abandons
  // every work item they wait for), waits for those in flight to return
  // before it frees the runtime and executors they use: a host thread
  // still inside ExecInAnnex when another thread stopped the monitor read
  // the freed executor (a crash, 1 run in ~150 of
  // MonitorTest.StopReturnsWhileHostCodeLoops under load).
  absl::Mutex calls_mu;
  bool calls_open ABSL_GUARDED_BY(calls_mu) = false;
  int calls_in_flight ABSL_GUARDED_BY(calls_mu) = 0;
  // Set once calls are closed: a call's annex work that polls it (not the
  // executor's commands, which Refuse cancels) stops.
  std::atomic<bool> closing{false};

  // One host call: ok() when the monitor took it (then what the call uses
  // stays until it ends). Never in a child made by fork() (the monitor's
  // locks may be copies held by threads that do not exist there). Where:
  // any thread.
  class Call {
   public:
    explicit Call(State* st) {
      if (getpid() != st->owner) return;
      absl::MutexLock lock(&st->calls_mu);
      if (!st->calls_open) return;
      ++st->calls_in_flight;
      st_ = st;
    }
    ~Call() {
      if (st_ == nullptr) return;
      absl::MutexLock lock(&st_->calls_mu);
      --st_->calls_in_flight;  // the unlock wakes WaitForCalls at zero
    }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    bool ok() const { return st_ != nullptr; }

   private:
    State* st_ = nullptr;
  };

  // Refuses new host calls. Where: any thread; returns at once.
  void CloseCalls() {
    absl::MutexLock lock(&calls_mu);
    calls_open = false;
    closing.store(true);
  }
  // Waits until no host call is in flight. Call after the runtime stopped
  // (then every call's wait for the annex has ended or given up). Where:
  // any thread but the annex's, the GIL not held.
  void WaitForCalls() {
    auto landed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(calls_mu) {
      return calls_in_flight == 0;
    };
    absl::MutexLock lock(&calls_mu);
    calls_mu.Await(absl::Condition(&landed));
  }
  // Options::question_pause_limit of the last Start (the session's
  // AnnexAccess hands it to HeapView).
  absl::Duration question_pause_limit = absl::InfiniteDuration();
  // Options::question_threads of the last Start, as lanes.
  heap::Lanes question_lanes;

  // Stops the watchdog, then its heap service and the heap recorder (which
  // may be waiting for the annex). Where: any thread but the annex's;
  // console_mu held.
  void StopWatchdog() ABSL_EXCLUSIVE_LOCKS_REQUIRED(console_mu) {
    if (watchdog) watchdog->Stop().IgnoreError();
    watchdog.reset();
    if (watchdog_heap) watchdog_heap->Stop();
    watchdog_heap.reset();
    if (recorder) recorder->Stop();
    recorder.reset();
  }
};

namespace {

constexpr char kExiting[] =
    "annex: the program is exiting (Python is finalizing): the annex runs "
    "no more commands";
constexpr char kStopping[] =
    "annex: the monitor is stopping: the annex runs no more commands";

// The monitors whose console stays up, refusing commands, while Python
// finalizes (before_atexit_stop below). The last step of finalization
// (Py_AtExit) closes their consoles, so that no socket outlives a host
// that never calls Stop(). A process-wide list: Py_AtExit takes a plain
// function, and the monitors it serves come and go (Monitor::Stop removes
// its own).
struct ExitingConsoles {
  absl::Mutex mu;
  // Per monitor (its state's address): what closes its console.
  std::vector<std::pair<const void*, std::function<void()>>> closers
      ABSL_GUARDED_BY(mu);
  bool hooked ABSL_GUARDED_BY(mu) = false;
};

ExitingConsoles& Exiting() {
  static auto* exiting = new ExitingConsoles();  // never destroyed
  return *exiting;
}

// Py_AtExit's callback: the end of Py_FinalizeEx. Where: the finalizing
// thread; no Python is used (Python is gone).
void CloseExitingConsoles() {
  ExitingConsoles& exiting = Exiting();
  absl::MutexLock lock(&exiting.mu);
  exiting.hooked = false;  // a later Py_Initialize starts afresh
  for (auto& [state, close] : exiting.closers) close();
  exiting.closers.clear();
}

// Monitor::Stop: this monitor closes its own console from now on.
void ForgetExitingConsole(const void* state) {
  ExitingConsoles& exiting = Exiting();
  absl::MutexLock lock(&exiting.mu);
  auto& v = exiting.closers;
  v.erase(std::remove_if(v.begin(), v.end(),
                         [state](const auto& c) { return c.first == state; }),
          v.end());
}

}  // namespace

Monitor::Monitor() : state_(std::make_unique<State>()) {}

namespace {

// Start() and Stop() take turns on `mu`. A caller holding the GIL waits
// for its turn with the GIL released: the one in progress may be waiting
// for the annex, the console or a host call to end, which need the GIL
// (one thread stopping the monitor while another, holding the GIL,
// stopped or started it too, waited forever). The GIL is taken again
// once `mu` is held; nothing holding the GIL waits for `mu`.
// Where: any thread but the annex's.
class ABSL_SCOPED_LOCKABLE StartStopTurn {
 public:
  explicit StartStopTurn(absl::Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    python::ScopedGilReleaseIfHeld release;
    mu_.Lock();
  }
  ~StartStopTurn() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  StartStopTurn(const StartStopTurn&) = delete;
  StartStopTurn& operator=(const StartStopTurn&) = delete;

 private:
  absl::Mutex& mu_;
};

}  // namespace

Monitor::~Monitor() { Stop().IgnoreError(); }

bool Monitor::running() const {
  State::Call call(state_.get());  // Stop() frees the runtime
  if (!call.ok()) return false;
  return state_->runtime != nullptr && state_->runtime->running();
}

glue::Session* Monitor::session() { return state_->session.get(); }

std::string Monitor::console_socket_path() const {
  absl::MutexLock lock(&state_->console_mu);
  return state_->console ? state_->console->socket_path() : "";
}

absl::Status Monitor::Start(const Options& options) {
  StartStopTurn turn(state_->mu);
  if (state_->runtime != nullptr && state_->runtime->running()) {
    return absl::FailedPreconditionError("the monitor is already started");
  }
  if (options.watchdog_heap_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("watchdog_heap_interval is negative");
  }
  if (options.watchdog_tracked_kinds == 0) {
    return absl::InvalidArgumentError(
        "watchdog_tracked_kinds must be positive");
  }
  if (options.question_pause_limit <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "question_pause_limit must be positive (InfiniteDuration: no limit)");
  }
  state_->question_pause_limit = options.question_pause_limit;
  if (options.question_threads < 0 ||
      options.question_threads > heap::Lanes::kMaxLanes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "question_threads must be 0 (automatic) to ", heap::Lanes::kMaxLanes));
  }
  state_->question_lanes = options.question_threads == 0
                               ? heap::Lanes::ForMachine()
                               : heap::Lanes(options.question_threads);
  absl::StatusOr<glue::RecordFormat> record_format =
      glue::ParseRecordFormat(options.record_format);
  if (!options.record_path.empty()) {
    if (!record_format.ok()) return record_format.status();
    if (options.record_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("record_interval must be positive");
    }
    if (options.record_top_kinds == 0) {
      return absl::InvalidArgumentError("record_top_kinds must be positive");
    }
  }
  {
    absl::MutexLock clock(&state_->console_mu);
    state_->console.reset();
  }
  state_->console_executor.reset();
  state_->host_executor.reset();
  state_->runtime.reset();
  state_->session = std::make_unique<glue::Session>();

  State* st = state_.get();
  // Services reach the annex through the session, never through globals.
  state_->session
      ->SetFactory<glue::AnnexAccess>(
          [st](glue::Session&)
              -> absl::StatusOr<std::unique_ptr<glue::AnnexAccess>> {
            if (st->runtime == nullptr) {
              return absl::UnavailableError("the annex is not running");
            }
            return std::make_unique<glue::AnnexAccess>(st->runtime.get(),
                                                       st->question_pause_limit,
                                                       st->question_lanes);
          })
      .IgnoreError();
  {
    absl::StatusOr<glue::MemoryBudget*> budget =
        state_->session->Get<glue::MemoryBudget>();
    if (!budget.ok()) return budget.status();
    (*budget)->SetLimits(options.annex_memory);
  }
  python::AnnexOptions annex;
  annex.yield_interval = options.annex_yield_interval;
  annex.on_stop = [st](python::AnnexRuntime&) {
    if (st->console_executor) st->console_executor->ReleaseAll();
    if (st->host_executor) st->host_executor->ReleaseAll();
    // The last reference point the watchdog used goes with the namespaces,
    // and with it the death watch's hooks when nothing else is watched.
    if (st->session != nullptr) {
      if (auto* view = st->session->Peek<glue::HeapView>()) {
        view->set_latest_ref(nullptr);
      }
    }
    python::FlushDeathWatch();
  };
  annex.before_atexit_stop = [st] {
    {
      absl::MutexLock lock(&st->console_mu);
      st->StopWatchdog();
    }
    // The console stays attachable while a walk in flight ends, and then
    // through CPython's finalization, refusing every command with a clear
    // message instead of vanishing; Stop() or the end of finalization
    // closes it.
    if (st->console_executor) st->console_executor->Refuse(kExiting);
    st->CloseCalls();
    if (st->host_executor) st->host_executor->Refuse(kExiting);
    ExitingConsoles& exiting = Exiting();
    absl::MutexLock lock(&exiting.mu);
    exiting.closers.emplace_back(st, [st] {
      absl::MutexLock clock(&st->console_mu);
      if (st->console) st->console->Stop();
      st->console.reset();
    });
    if (!exiting.hooked) {
      exiting.hooked = Py_AtExit(&CloseExitingConsoles) == 0;
    }
  };
  auto runtime = python::AnnexRuntime::Start(std::move(annex));
  if (!runtime.ok()) return runtime.status();
  state_->runtime = std::move(*runtime);
  state_->host_executor = std::make_unique<services::AnnexConsole>(
      state_->runtime.get(), state_->session.get());

  if (options.console) {
    state_->console_executor = std::make_unique<services::AnnexConsole>(
        state_->runtime.get(), state_->session.get());
    console::ServerOptions server;
    server.socket_dir = options.console_socket_dir;
    server.enable_tcp = options.console_tcp;
    server.tcp_port = options.console_tcp_port;
    server.allow_exec_target = options.allow_exec_target;
    server.program = options.program_name;
    server.python_version = PY_VERSION;
    auto started =
        console::Server::Start(server, state_->console_executor.get());
    if (!started.ok()) {
      state_->runtime->Stop().IgnoreError();
      state_->runtime.reset();
      state_->console_executor.reset();
      state_->host_executor.reset();
      return started.status();
    }
    absl::MutexLock clock(&state_->console_mu);
    state_->console = std::move(*started);
  }
  if (options.watchdog) {
    watchdog::Options wopts = options.watchdog_options;
    // Annex's own thread states in the target are not the host's threads.
    for (unsigned long ident : state_->runtime->own_target_thread_idents()) {
      wopts.hidden_thread_idents.push_back(ident);
    }
    const bool reports = options.watchdog_report_heap &&
                         (!wopts.report_path.empty() || wopts.report_fd >= 0);
    // Zero: the default, periodic walks only for the endpoint; infinite:
    // none.
    absl::Duration interval = options.watchdog_heap_interval;
    if (interval == absl::ZeroDuration() && wopts.metrics_port >= 0) {
      interval = kDefaultMetricsHeapInterval;
    }
    if (interval == absl::InfiniteDuration()) interval = absl::ZeroDuration();
    std::unique_ptr<services::WatchdogHeap> heap;
    if (interval > absl::ZeroDuration() || reports) {
      services::WatchdogHeap::Config config;
      config.interval = interval;
      config.top_kinds = options.watchdog_top_kinds;
      config.tracked_kinds = options.watchdog_tracked_kinds;
      config.pause_limit = options.question_pause_limit;
      config.lanes = state_->question_lanes;
      heap = std::make_unique<services::WatchdogHeap>(
          state_->runtime.get(), state_->session.get(), config);
      services::WatchdogHeap* h = heap.get();
      watchdog::MetricsProvider user_metrics = wopts.metrics_provider;
      wopts.metrics_provider = [h, user_metrics](watchdog::Metrics& m) {
        h->FillMetrics(m);
        if (user_metrics) user_metrics(m);
      };
      if (interval > absl::ZeroDuration()) {
        watchdog::MemoryProvider user = wopts.memory_provider;
        wopts.memory_provider = [h, user](watchdog::MemorySample& sample) {
          h->Fill(sample);
          if (user) user(sample);
        };
      }
      if (reports) {
        wopts.heap_reporter = [h](absl::Duration timeout) {
          return h->Report(timeout);
        };
      }
      heap->Start();
    }
    auto dog = std::make_unique<watchdog::Watchdog>();
    if (absl::Status s = dog->Start(wopts); !s.ok()) {
      if (heap) heap->Stop();
      heap.reset();
      {
        absl::MutexLock clock(&state_->console_mu);
        if (state_->console) state_->console->Stop();
        state_->console.reset();
      }
      state_->runtime->Stop().IgnoreError();
      state_->runtime.reset();
      state_->console_executor.reset();
      state_->host_executor.reset();
      return s;
    }
    absl::MutexLock clock(&state_->console_mu);
    state_->watchdog = std::move(dog);
    state_->watchdog_heap = std::move(heap);
  }
  if (!options.record_path.empty()) {
    services::HeapRecorder::Config rc;
    rc.path = options.record_path;
    rc.interval = options.record_interval;
    rc.format = *record_format;
    rc.max_bytes = options.record_max_bytes;
    rc.top_rows = options.record_top_kinds;
    rc.retainers = options.record_retainers;
    rc.program = options.program_name;
    auto recorder = std::make_unique<services::HeapRecorder>(
        state_->runtime.get(), state_->session.get(), std::move(rc));
    recorder->Start();
    absl::MutexLock clock(&state_->console_mu);
    state_->recorder = std::move(recorder);
  }
  absl::MutexLock calls(&state_->calls_mu);
  state_->closing.store(false);
  state_->calls_open = true;
  return absl::OkStatus();
}

absl::Status Monitor::Stop() {
  if (getpid() != state_->owner) {
    // A child made by fork(): none of the monitor's threads exist here (the
    // annex interpreter was ended before the fork, see annex_runtime.h) and
    // its mutexes may be copies locked by them. Joining or locking would
    // hang, so the child forgets the parent's monitor: its memory is left
    // as it is, once, and this Monitor starts afresh.
    static_cast<void>(state_.release());
    state_ = std::make_unique<State>();
    return absl::OkStatus();
  }
  StartStopTurn turn(state_->mu);
  ForgetExitingConsole(state_.get());
  {
    // The console's Stop waits for the commands in flight and for clients
    // that just left (their namespaces are dropped on the annex thread),
    // which need the GIL: a caller holding it lets go meanwhile, or a host
    // that stops the monitor while a client disconnects would wait
    // forever.
    python::ScopedGilReleaseIfHeld release;
    // The host's calls first: no new ones, and the host executor's
    // commands in flight are interrupted and return an error (Refuse
    // waits for them; each gives up after its interrupt grace).
    state_->CloseCalls();
    if (state_->host_executor) state_->host_executor->Refuse(kStopping);
    absl::MutexLock clock(&state_->console_mu);
    // The watchdog, its heap walks and the recorder first: a walk in flight
    // (up to a second or more for a large heap) ends while the console still
    // answers, so the process is unattachable only while the annex itself
    // ends and CPython finalizes (docs/architecture.md).
    state_->StopWatchdog();
    if (state_->console) state_->console->Stop();  // waits for commands
    state_->console.reset();
  }
  absl::Status status;
  if (state_->runtime != nullptr) status = state_->runtime->Stop();
  {
    // Host calls still in flight (waiting for the annex, e.g. behind a
    // command that would not stop) have had their answer now: they end
    // before what they use goes.
    python::ScopedGilReleaseIfHeld release;
    state_->WaitForCalls();
  }
  state_->runtime.reset();
  state_->console_executor.reset();
  state_->host_executor.reset();
  state_->session.reset();
  return status;
}

watchdog::Metrics Monitor::Metrics() const {
  absl::MutexLock lock(&state_->console_mu);
  return state_->watchdog ? state_->watchdog->Metrics() : watchdog::Metrics();
}

namespace {

// What ExecInAnnex returns for a console reply.
absl::StatusOr<std::string> ReplyToResult(const console::Reply& reply) {
  if (reply.status == console::ReplyStatus::kOk) return reply.output;
  if (reply.status == console::ReplyStatus::kRefused) {
    return absl::UnavailableError(reply.error);
  }
  if (reply.exit_code == 3 && reply.output.empty()) {
    return absl::UnavailableError(reply.error);
  }
  return absl::InvalidArgumentError(absl::StrCat(reply.output, reply.error));
}

}  // namespace

absl::StatusOr<std::string> Monitor::ExecInAnnex(const std::string& code,
                                                 uint64_t namespace_id,
                                                 absl::Duration timeout) {
  if (namespace_id == 0) {
    return absl::InvalidArgumentError(
        "namespace 0 is the one-off namespace: use ExecInAnnex(code)");
  }
  State::Call call(state_.get());
  if (!call.ok()) return absl::UnavailableError("the monitor is not running");
  python::AnnexRuntime* rt = state_->runtime.get();
  if (rt == nullptr || !rt->running() || state_->host_executor == nullptr) {
    return absl::UnavailableError("the monitor is not running");
  }
  console::Request request;
  request.kind = console::RequestKind::kInteractive;  // as a console line
  request.text = code;
  console::Cancellation never;
  const absl::Time deadline = absl::Now() + timeout;
  console::Reply reply = state_->host_executor->ExecuteWithin(
      namespace_id, request, never, deadline);
  if (reply.status == console::ReplyStatus::kIncomplete) {
    return absl::InvalidArgumentError(
        "incomplete statement (a compound statement ends with a blank line)");
  }
  if (reply.status == console::ReplyStatus::kInterrupted &&
      absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat(reply.output, reply.error));
  }
  return ReplyToResult(reply);
}

void Monitor::Interrupt() {
  State::Call call(state_.get());
  if (!call.ok()) return;
  python::AnnexRuntime* rt = state_->runtime.get();
  if (rt != nullptr) rt->Interrupt();
}

absl::Status Monitor::ReleaseAnnexNamespace(uint64_t namespace_id) {
  State::Call call(state_.get());
  if (!call.ok()) return absl::UnavailableError("the monitor is not running");
  python::AnnexRuntime* rt = state_->runtime.get();
  if (rt == nullptr || !rt->running() || state_->host_executor == nullptr) {
    return absl::UnavailableError("the monitor is not running");
  }
  state_->host_executor->CloseClient(namespace_id);
  return absl::OkStatus();
}

int Monitor::metrics_port() const {
  absl::MutexLock lock(&state_->console_mu);
  return state_->watchdog ? state_->watchdog->metrics_port() : -1;
}

absl::StatusOr<std::string> Monitor::ExecInAnnex(const std::string& code) {
  return ExecInAnnex(code, absl::InfiniteDuration());
}

absl::StatusOr<std::string> Monitor::ExecInAnnex(const std::string& code,
                                                 absl::Duration timeout) {
  State::Call call(state_.get());
  if (!call.ok()) return absl::UnavailableError("the monitor is not running");
  python::AnnexRuntime* rt = state_->runtime.get();
  if (rt == nullptr || !rt->running() || state_->host_executor == nullptr) {
    return absl::UnavailableError("the monitor is not running");
  }
  // A namespace of its own in the host's executor (which outlives any work
  // left running), released once the annex gets to it.
  static std::atomic<uint64_t> next_one_off{0};
  const uint64_t namespace_id = ~uint64_t{0} - next_one_off.fetch_add(1);
  console::Request request;
  request.text = code;
  console::Cancellation never;
  const absl::Time deadline = absl::Now() + timeout;
  console::Reply reply = state_->host_executor->ExecuteWithin(
      namespace_id, request, never, deadline);
  state_->host_executor->CloseClientLater(namespace_id);
  if (reply.status == console::ReplyStatus::kInterrupted &&
      absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat(reply.output, reply.error));
  }
  return ReplyToResult(reply);
}

absl::StatusOr<glue::Stat> Monitor::HeapSummary(const std::string& classifier,
                                                size_t max_rows,
                                                uint64_t reference_namespace,
                                                absl::Duration timeout) {
  absl::StatusOr<glue::Classifier> c = glue::Classifier::Parse(classifier);
  if (!c.ok()) return c.status();
  State::Call call(state_.get());
  if (!call.ok()) return absl::UnavailableError("the monitor is not running");
  python::AnnexRuntime* rt = state_->runtime.get();
  glue::Session* session = state_->session.get();
  if (rt == nullptr || !rt->running() || session == nullptr) {
    return absl::UnavailableError("the monitor is not running");
  }
  State* st = state_.get();
  // Shared: the walk may end after this call gave up waiting (the session
  // outlives the runtime's work, see Stop()).
  auto result = std::make_shared<absl::StatusOr<glue::Stat>>(
      absl::UnavailableError("the annex did not run the question"));
  glue::Classifier parsed = *c;
  // The heap view is the session's, used on the annex thread only (as the
  // console's hp uses it), so questions from hosts and consoles take turns.
  python::AnnexRuntime::RunOutcome outcome;
  absl::Status ran = rt->RunWithin(
      [result, session, parsed, max_rows, reference_namespace,
       executor = state_->host_executor.get()](const python::ThreadStates&) {
        absl::StatusOr<glue::HeapView*> view = session->Get<glue::HeapView>();
        if (!view.ok()) {
          *result = view.status();
          return;
        }
        std::shared_ptr<const glue::ReferencePoint> ref;
        if (reference_namespace != 0 && executor != nullptr) {
          ref = executor->ReferenceOf(reference_namespace);
        }
        *result = (*view)->Summary(parsed, max_rows, ref.get());
      },
      absl::Now() + timeout, [st] { return st->closing.load(); },
      absl::ZeroDuration(), &outcome);
  if (!outcome.finished) {
    if (absl::IsDeadlineExceeded(ran)) {
      return absl::DeadlineExceededError(
          absl::StrCat("no heap summary within ", absl::FormatDuration(timeout),
                       outcome.started ? " (the walk ends in the background)"
                                       : " (the annex had not started it)"));
    }
    return ran;
  }
  return *result;
}

}  // namespace annex
