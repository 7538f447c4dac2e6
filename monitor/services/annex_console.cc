// Console commands on the annex thread.
#include "monitor/services/annex_console.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "glue/module/hp.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/guards.h"
#include "monitor/python/target_threads.h"
#include "monitor/services/console_repl_py.h"
#include "monitor/watchdog/internal/stack_dump.h"

namespace annex::services {
namespace {

using python::ReadTargetThreads;
using python::TargetThread;
using python::Text;

using console::Reply;
using console::ReplyStatus;
using console::RequestKind;

// The pending exception as "Type: message", cleared. Where: GIL held.
std::string TakeErrorText() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string out = type && PyType_Check(type)
                        ? reinterpret_cast<PyTypeObject*>(type)->tp_name
                        : "Error";
  if (value != nullptr) {
    PyObject* s = PyObject_Str(value);
    if (s != nullptr) {
      std::string msg = Text(s);
      if (!msg.empty()) absl::StrAppend(&out, ": ", msg);
      Py_DECREF(s);
    } else {
      PyErr_Clear();
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return out + "\n";
}

Reply Ok(std::string output) {
  Reply r;
  r.output = std::move(output);
  return r;
}

Reply Error(std::string error, int code = 1) {
  Reply r;
  r.status = ReplyStatus::kError;
  r.exit_code = code;
  r.error = std::move(error);
  return r;
}

// After an interrupt, how long a command gets to end before the client is
// answered without it.
constexpr absl::Duration kInterruptGrace = absl::Seconds(1);
// How long `.threads` / `.stacks` wait for the annex before they read
// without the GIL.
constexpr absl::Duration kInspectPatience = absl::Milliseconds(300);

// What a work item of Execute() leaves for the caller, shared because the
// caller may stop waiting before the item ends (RunWithin).
struct Box {
  std::atomic<bool> abandoned{false};
  Reply reply;  // read only when RunWithin says the item finished
};

// Runs `write(fd)` into an anonymous in-memory file and returns what it
// wrote. Where: any thread.
template <typename F>
std::string Capture(F&& write) {
  int fd = ::memfd_create("annex-stacks", MFD_CLOEXEC);
  if (fd < 0) return "";
  write(fd);
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Collects the annex interpreter's reference cycles (nothing of the
// target's: each interpreter has its own gc lists). A no-op while the
// annex's gc is disabled or collecting. Where: annex thread, GIL held,
// annex current.
void CollectAnnexCycles() { PyGC_Collect(); }

}  // namespace

std::string DescribeGilHolder(
    python::AnnexRuntime* runtime,
    const std::vector<watchdog::internal::PythonThreadName>& python_names) {
  PyInterpreterState* target = runtime->target();
  if (target == nullptr || AnnexPeekIsFinalizing()) return "";
  AnnexPeekGil gil;
  if (AnnexPeekGilState(target, &gil) != 0 || !gil.locked) {
    return "the GIL is free\n";
  }
  watchdog::internal::ScopedThreadListLock lock(100 * 1000);
  if (!lock.locked() || !AnnexPeekIsLiveThreadState(gil.holder)) {
    return "the GIL is held by a thread that could not be read\n";
  }
  if (AnnexPeekThreadInterpreter(gil.holder) == runtime->annex()) {
    return "the GIL is held by the annex itself\n";
  }
  watchdog::internal::ThreadIds ids =
      watchdog::internal::ReadThreadIds(gil.holder);
  for (unsigned long own : runtime->own_target_thread_idents()) {
    if (own == ids.ident) return "the GIL is held by Annex's own thread\n";
  }
  const bool main = ids.ident == AnnexPeekMainThreadIdent();
  std::string where = Capture(
      [&](int fd) { AnnexPeekWriteStack(fd, gil.holder, /*max_depth=*/3); });
  const std::string python_name =
      watchdog::internal::PythonNameOf(python_names, ids.ident, ids.native_id);
  return absl::StrFormat(
      "the GIL is held by target thread %lu (native %lu, \"%s\"%s%s), "
      "innermost first:\n%s",
      ids.ident, ids.native_id, ids.name,
      python_name.empty() ? "" : absl::StrCat(", Python \"", python_name, "\""),
      main ? ", main thread" : "", where);
}

std::string GilFreeThreads(
    python::AnnexRuntime* runtime, bool stacks,
    const std::vector<watchdog::internal::PythonThreadName>& python_names) {
  PyInterpreterState* target = runtime->target();
  if (target == nullptr || AnnexPeekIsFinalizing()) return "";
  AnnexPeekGil gil;
  const PyThreadState* holder = nullptr;
  if (AnnexPeekGilState(target, &gil) == 0 && gil.locked) holder = gil.holder;
  std::string note = DescribeGilHolder(runtime, python_names);
  watchdog::internal::ScopedThreadListLock lock(100 * 1000);
  std::string body = Capture([&](int fd) {
    watchdog::internal::WriteAllThreads(fd, target, holder, stacks ? 100 : 1,
                                        runtime->own_target_thread_idents(),
                                        python_names);
  });
  return absl::StrCat(
      "(read without the GIL: the annex could not answer within ",
      absl::FormatDuration(kInspectPatience), "; ", note,
      lock.locked() ? "" : "(thread list not locked: the read may be torn)\n",
      ")\n", body);
}

AnnexConsole::~AnnexConsole() = default;

// A client that connects before the target gets stuck finds its threads'
// Python names in the GIL-free answers too.
void AnnexConsole::OpenClient(uint64_t) {
  if (refusing_.load()) return;
  runtime_
      ->Post(
          [this](const python::ThreadStates& ts) { RememberThreadNames(ts); })
      .IgnoreError();
}

void AnnexConsole::RememberThreadNames(const python::ThreadStates& ts) {
  std::vector<watchdog::internal::PythonThreadName> names;
  {
    // Reads only (cpython_peek.h).
    python::ScopedTargetSwap swap(ts, python::ScopedTargetSwap::Use::kRead);
    names = watchdog::internal::CopyPythonThreadNames();
  }
  absl::MutexLock lock(&names_mu_);
  python_names_.swap(names);
}

std::vector<watchdog::internal::PythonThreadName> AnnexConsole::ThreadNames() {
  absl::MutexLock lock(&names_mu_);
  return python_names_;
}

void AnnexConsole::CloseClient(uint64_t client_id) {
  // Once refusing, the runtime's on_stop releases the namespaces.
  if (refusing_.load()) return;
  runtime_->Run([&](const python::ThreadStates&) { DropNamespace(client_id); })
      .IgnoreError();
}

void AnnexConsole::DropNamespace(uint64_t client_id) {
  auto it = namespaces_.find(client_id);
  if (it == namespaces_.end()) return;
  Py_DECREF(it->second);
  namespaces_.erase(it);
  // A namespace often sits in a cycle (a function defined in it, a kept
  // exception's traceback): collect the annex's own cycles now, so the
  // client's kept sets and reference point go with it, and with them
  // their identity watch, which every allocation of the target pays for.
  // Only annex objects are in this interpreter's gc lists.
  CollectAnnexCycles();
  python::FlushDeathWatch();
}

void AnnexConsole::ReleaseAll() {
  for (auto& [id, ns] : namespaces_) Py_DECREF(ns);
  namespaces_.clear();
  Py_CLEAR(helper_);
  CollectAnnexCycles();
  python::FlushDeathWatch();
}

std::shared_ptr<const glue::ReferencePoint> AnnexConsole::ReferenceOf(
    uint64_t client_id) const {
  auto it = namespaces_.find(client_id);
  if (it == namespaces_.end()) return nullptr;
  PyObject* hp = PyDict_GetItemString(it->second, "hp");  // borrowed
  return hp == nullptr ? nullptr : glue::HpReference(hp);
}

void AnnexConsole::Refuse(std::string why) {
  absl::MutexLock lock(&flight_mu_);
  if (!refusing_.load()) {
    refusal_ = std::move(why);
    if (refusal_.empty() || refusal_.back() != '\n') refusal_ += '\n';
    refusing_.store(true);
  }
  // The commands in flight see refusing_ as a cancel (RunWithin polls it)
  // and return within their interrupt grace.
  auto landed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flight_mu_) {
    return in_flight_ == 0;
  };
  flight_mu_.Await(absl::Condition(&landed));
}

void AnnexConsole::Interrupt(uint64_t client_id) {
  absl::MutexLock lock(&mu_);
  if (has_running_ && running_client_ == client_id) runtime_->Interrupt();
}

PyObject* AnnexConsole::Namespace(uint64_t client_id) {
  auto it = namespaces_.find(client_id);
  if (it != namespaces_.end()) return it->second;
  PyObject* ns = PyDict_New();
  if (ns == nullptr) return nullptr;
  if (PyDict_SetItemString(ns, "__name__",
                           PyUnicode_FromString("__console__")) < 0 ||
      PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0) {
    Py_DECREF(ns);
    return nullptr;
  }
  if (session_ != nullptr) {
    PyObject* hp = glue::NewHp(session_);
    if (hp == nullptr || PyDict_SetItemString(ns, "hp", hp) < 0) {
      Py_XDECREF(hp);
      Py_DECREF(ns);
      return nullptr;
    }
    Py_DECREF(hp);
  }
  namespaces_[client_id] = ns;
  return ns;
}

console::Reply AnnexConsole::Execute(uint64_t client_id,
                                     const console::Request& request,
                                     const console::Cancellation& cancel) {
  return ExecuteWithin(client_id, request, cancel, absl::InfiniteFuture());
}

void AnnexConsole::CloseClientLater(uint64_t client_id) {
  if (refusing_.load()) return;
  runtime_
      ->Post([this, client_id](const python::ThreadStates&) {
        DropNamespace(client_id);
      })
      .IgnoreError();
}

console::Reply AnnexConsole::ExecuteWithin(uint64_t client_id,
                                           const console::Request& request,
                                           const console::Cancellation& cancel,
                                           absl::Time deadline) {
  {
    absl::MutexLock lock(&flight_mu_);
    if (refusing_.load()) {
      Reply refused = Error(refusal_);
      refused.status = ReplyStatus::kRefused;
      return refused;
    }
    ++in_flight_;
  }
  absl::Cleanup landed = [this] {
    absl::MutexLock lock(&flight_mu_);
    --in_flight_;  // the unlock wakes Refuse() at zero
  };
  const bool inspect = request.kind == RequestKind::kThreads ||
                       request.kind == RequestKind::kStacks;
  auto box = std::make_shared<Box>();
  // Owns what it touches: RunWithin may return before it ends (`this`
  // outlives the runtime's work, see AnnexConsole()).
  auto work = [this, box, client_id, request](const python::ThreadStates& ts) {
    if (box->abandoned.load()) return;  // the caller gave up meanwhile
    {
      absl::MutexLock lock(&mu_);
      running_client_ = client_id;
      has_running_ = true;
    }
    Reply reply;
    switch (request.kind) {
      case RequestKind::kExec:
      case RequestKind::kInteractive:
        reply = RunPython(client_id, request, ts);
        break;
      case RequestKind::kThreads:
        reply = Ok(python::DescribeThreads(ts));
        break;
      case RequestKind::kStacks:
        reply = Ok(python::DescribeStacks(ts));
        break;
      case RequestKind::kInterruptThread:
        reply = InterruptThread(request.text, ts);
        break;
      case RequestKind::kExecTarget:
        reply = ExecTarget(request.text, ts);
        break;
      default:
        reply = Error("this command is not run by the annex\n");
        reply.status = ReplyStatus::kRefused;
    }
    box->reply = std::move(reply);
    RememberThreadNames(ts);
    absl::MutexLock lock(&mu_);
    has_running_ = false;
  };
  const absl::Time start = absl::Now();
  python::AnnexRuntime::RunOutcome outcome;
  absl::Status status = runtime_->RunWithin(
      std::move(work),
      inspect ? std::min(deadline, absl::Now() + kInspectPatience) : deadline,
      [this, &cancel] { return cancel.IsCancelled() || refusing_.load(); },
      inspect ? absl::Milliseconds(100) : kInterruptGrace, &outcome);
  const bool timed_out = absl::IsDeadlineExceeded(status) && !inspect;
  if (outcome.finished) {
    if (!status.ok() && !outcome.started) {
      return Error(absl::StrCat(status.message(), "\n"), 3);
    }
    if (timed_out && box->reply.status == ReplyStatus::kInterrupted) {
      box->reply.error = absl::StrCat(
          "annex: timed out after ", absl::FormatDuration(deadline - start),
          "; the command was interrupted\n", box->reply.error);
    }
    return std::move(box->reply);
  }
  box->abandoned.store(true);
  if (absl::IsUnavailable(status)) {
    return Error(absl::StrCat(status.message(), "\n"), 3);
  }
  if (inspect && !cancel.IsCancelled() && !refusing_.load()) {
    // The annex is busy or cannot get the GIL: answer from GIL-free reads,
    // as the watchdog does.
    return Ok(GilFreeThreads(runtime_, request.kind == RequestKind::kStacks,
                             ThreadNames()));
  }
  Reply r;
  r.status = ReplyStatus::kInterrupted;
  r.exit_code = 130;
  r.error =
      outcome.started
          ? absl::StrCat("KeyboardInterrupt: the command did not stop within ",
                         absl::FormatDuration(kInterruptGrace),
                         " of the interrupt (it ends when it next runs Python "
                         "code; later commands wait for it)\n")
          : "KeyboardInterrupt (before the annex could start it)\n";
  if (timed_out) {
    r.error =
        absl::StrCat("annex: timed out after ",
                     absl::FormatDuration(deadline - start), "\n", r.error);
  }
  absl::StrAppend(&r.error,
                  "annex: ", DescribeGilHolder(runtime_, ThreadNames()));
  return r;
}

console::Reply AnnexConsole::RunPython(uint64_t client_id,
                                       const console::Request& req,
                                       const python::ThreadStates&) {
  if (helper_ == nullptr) {
    PyObject* ns = PyDict_New();
    if (ns == nullptr) return Error(TakeErrorText());
    PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
    // console_repl.py (embedded), compiled under its path so that
    // tracebacks name it.
    PyObject* code = Py_CompileString(
        embedded::kConsoleReplPy, embedded::kConsoleReplPyPath, Py_file_input);
    PyObject* r = code != nullptr ? PyEval_EvalCode(code, ns, ns) : nullptr;
    Py_XDECREF(code);
    if (r == nullptr) {
      Py_DECREF(ns);
      if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        // Interrupted (Ctrl-C, a timeout) while the helper was being set
        // up: an interrupted command, not a broken console.
        PyErr_Clear();
        Reply interrupted = Error("KeyboardInterrupt\n", 130);
        interrupted.status = ReplyStatus::kInterrupted;
        return interrupted;
      }
      return Error("annex console helper failed: " + TakeErrorText());
    }
    Py_DECREF(r);
    helper_ = ns;
  }
  PyObject* ns = Namespace(client_id);
  if (ns == nullptr) return Error(TakeErrorText());
  PyObject* run = PyDict_GetItemString(helper_, "run");  // borrowed
  if (run == nullptr) {
    return Error(absl::StrCat(
        "annex console helper failed: ", embedded::kConsoleReplPyPath,
        " defines no run()\n"));
  }
  // Sets this command keeps are charged to this client's hp (the memory
  // budget, glue/memory_budget.h), and its heap questions have its pause
  // limit (hp.pause_limit); then the host's again.
  if (session_ != nullptr) {
    glue::ActFor(session_, PyDict_GetItemString(ns, "hp"));
  }
  PyObject* result = PyObject_CallFunction(
      run, "Os#O", ns, req.text.data(),
      static_cast<Py_ssize_t>(req.text.size()),
      req.kind == RequestKind::kInteractive ? Py_True : Py_False);
  if (session_ != nullptr) glue::ActFor(session_, nullptr);
  if (result == nullptr) {
    // An interrupt can land outside the helper's own try (e.g. in finally).
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
      PyErr_Clear();
      Reply r = Error("KeyboardInterrupt\n", 130);
      r.status = ReplyStatus::kInterrupted;
      return r;
    }
    return Error(TakeErrorText());
  }
  Reply reply;
  const char* status = "error";
  const char* out = "";
  const char* err = "";
  int code = 1;
  if (!PyArg_ParseTuple(result, "sssi", &status, &out, &err, &code)) {
    Py_DECREF(result);
    return Error(TakeErrorText());
  }
  reply.output = out;
  reply.error = err;
  reply.exit_code = code;
  std::string s = status;
  reply.status = s == "ok"            ? ReplyStatus::kOk
                 : s == "incomplete"  ? ReplyStatus::kIncomplete
                 : s == "interrupted" ? ReplyStatus::kInterrupted
                                      : ReplyStatus::kError;
  Py_DECREF(result);
  return reply;
}

console::Reply AnnexConsole::InterruptThread(const std::string& arg,
                                             const python::ThreadStates& ts) {
  python::ScopedTargetSwap swap(ts);
  std::string want(absl::StripAsciiWhitespace(arg));
  unsigned long ident = 0;
  bool by_number = absl::SimpleAtoi(want, &ident);
  int matched = 0;
  for (const TargetThread& t : ReadTargetThreads(ts, /*all_frames=*/false)) {
    if (by_number ? t.ident == ident : t.name == want) {
      matched += PyThreadState_SetAsyncExc(t.ident, PyExc_KeyboardInterrupt);
    }
  }
  if (matched == 0) {
    return Error(absl::StrCat("no target thread \"", want,
                              "\" (see .threads for idents and names)\n"));
  }
  return Ok(absl::StrCat("KeyboardInterrupt raised in ", matched,
                         " target thread(s)\n"));
}

console::Reply AnnexConsole::ExecTarget(const std::string& code,
                                        const python::ThreadStates& ts) {
  // Runs target code on purpose (the host granted the permission): the
  // target's own interpreter, its __main__ namespace (docs/design.md rule 9).
  python::ScopedTargetSwap swap(ts);
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  if (main == nullptr) return Error(TakeErrorText());
  PyObject* globals = PyModule_GetDict(main);
  bool is_expression = true;
  PyObject* compiled =
      Py_CompileString(code.c_str(), "<annex exec-target>", Py_eval_input);
  if (compiled == nullptr) {
    PyErr_Clear();
    is_expression = false;
    compiled =
        Py_CompileString(code.c_str(), "<annex exec-target>", Py_file_input);
  }
  if (compiled == nullptr) return Error(TakeErrorText());
  PyObject* result = PyEval_EvalCode(compiled, globals, globals);
  Py_DECREF(compiled);
  if (result == nullptr) return Error(TakeErrorText());
  std::string text;
  if (is_expression && result != Py_None) {
    PyObject* repr = PyObject_Repr(result);
    text = repr ? Text(repr) + "\n" : TakeErrorText();
    Py_XDECREF(repr);
  }
  Py_DECREF(result);
  return Ok(text);
}

}  // namespace annex::services
