// Console commands on the annex thread.
#include "monitor/internal/annex_console.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "glue/hp.h"
#include "monitor/python/guards.h"
#include "monitor/python/target_threads.h"

namespace annex::monitor_internal {
namespace {

using python::ReadTargetThreads;
using python::Text;
using python::ThreadInfo;

using console::Reply;
using console::ReplyStatus;
using console::Request;
using console::RequestKind;

// REPL semantics, run in the annex (standard library only, DESIGN.md rule
// 8). Returns (status, output, error, exit_code).
constexpr char kHelperSource[] = R"PY(
import codeop, io, sys, traceback

def _format(exc):
    tb = exc.__traceback__
    if tb is not None:
        tb = tb.tb_next  # hide run() itself
    return ''.join(traceback.format_exception(type(exc), exc, tb))

def run(ns, source, interactive):
    try:
        if interactive:
            code = codeop.compile_command(source, '<console>', 'single')
            if code is None:
                return ('incomplete', '', '', 0)
        else:
            code = compile(source, '<console>', 'exec')
    except (SyntaxError, OverflowError, ValueError) as e:
        return ('error', '', ''.join(traceback.format_exception_only(type(e), e)), 1)
    out = io.StringIO()
    def display(value):
        if value is None:
            return
        ns['_'] = value
        out.write(repr(value) + '\n')
    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout = sys.stderr = out
    sys.displayhook = display
    try:
        exec(code, ns)
    except SystemExit as e:
        c = e.code
        if c is None:
            return ('ok', out.getvalue(), '', 0)
        if isinstance(c, int):
            return ('ok' if c == 0 else 'error', out.getvalue(), '', c)
        return ('error', out.getvalue(), str(c) + '\n', 1)
    except KeyboardInterrupt:
        return ('interrupted', out.getvalue(), 'KeyboardInterrupt\n', 130)
    except BaseException as e:
        return ('error', out.getvalue(), _format(e), 1)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
    return ('ok', out.getvalue(), '', 0)
)PY";

// The pending exception as "Type: message", cleared. Where: GIL held.
std::string TakeErrorText() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string out =
      type && PyType_Check(type) ? ((PyTypeObject*)type)->tp_name : "Error";
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

}  // namespace

AnnexConsole::~AnnexConsole() = default;

void AnnexConsole::OpenSession(uint64_t) {}

void AnnexConsole::CloseSession(uint64_t session_id) {
  runtime_->Run([&](const python::ThreadStates&) {
    auto it = namespaces_.find(session_id);
    if (it == namespaces_.end()) return;
    Py_DECREF(it->second);
    namespaces_.erase(it);
  }).IgnoreError();
}

void AnnexConsole::ReleaseAll() {
  for (auto& [id, ns] : namespaces_) Py_DECREF(ns);
  namespaces_.clear();
  Py_CLEAR(helper_);
}

std::shared_ptr<const glue::ReferencePoint> AnnexConsole::ReferenceOf(
    uint64_t session_id) const {
  auto it = namespaces_.find(session_id);
  if (it == namespaces_.end()) return nullptr;
  PyObject* hp = PyDict_GetItemString(it->second, "hp");  // borrowed
  return hp == nullptr ? nullptr : glue::HpReference(hp);
}

void AnnexConsole::Interrupt(uint64_t session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (has_running_ && running_session_ == session_id) runtime_->Interrupt();
}

PyObject* AnnexConsole::Namespace(uint64_t session_id) {
  auto it = namespaces_.find(session_id);
  if (it != namespaces_.end()) return it->second;
  PyObject* ns = PyDict_New();
  if (ns == nullptr) return nullptr;
  if (PyDict_SetItemString(ns, "__name__", PyUnicode_FromString("__console__")) <
          0 ||
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
  namespaces_[session_id] = ns;
  return ns;
}

console::Reply AnnexConsole::Execute(uint64_t session_id,
                                     const console::Request& request,
                                     const console::Cancellation& cancel) {
  Reply reply;
  absl::Status status = runtime_->Run([&](const python::ThreadStates& ts) {
    if (cancel.IsCancelled()) {  // the client left while this waited
      reply.status = ReplyStatus::kInterrupted;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_session_ = session_id;
      has_running_ = true;
    }
    switch (request.kind) {
      case RequestKind::kExec:
      case RequestKind::kInteractive:
        reply = RunPython(session_id, request, ts);
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
    std::lock_guard<std::mutex> lock(mu_);
    has_running_ = false;
  });
  if (!status.ok()) return Error(std::string(status.message()) + "\n", 3);
  return reply;
}

console::Reply AnnexConsole::RunPython(uint64_t session_id,
                                       const console::Request& req,
                                       const python::ThreadStates&) {
  if (helper_ == nullptr) {
    PyObject* ns = PyDict_New();
    if (ns == nullptr) return Error(TakeErrorText());
    PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
    PyObject* r = PyRun_String(kHelperSource, Py_file_input, ns, ns);
    if (r == nullptr) {
      Py_DECREF(ns);
      return Error("annex console helper failed: " + TakeErrorText());
    }
    Py_DECREF(r);
    helper_ = ns;
  }
  PyObject* ns = Namespace(session_id);
  if (ns == nullptr) return Error(TakeErrorText());
  PyObject* run = PyDict_GetItemString(helper_, "run");  // borrowed
  PyObject* result = PyObject_CallFunction(
      run, "Os#O", ns, req.text.data(), static_cast<Py_ssize_t>(req.text.size()),
      req.kind == RequestKind::kInteractive ? Py_True : Py_False);
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
  reply.status = s == "ok"           ? ReplyStatus::kOk
                 : s == "incomplete" ? ReplyStatus::kIncomplete
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
  for (const ThreadInfo& t : ReadTargetThreads(ts, /*all_frames=*/false)) {
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
  // target's own interpreter, its __main__ namespace (DESIGN.md rule 9).
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

}  // namespace annex::monitor_internal
