// Console commands on the annex thread.
#include "monitor/internal/annex_console.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "monitor/python/guards.h"

namespace annex::monitor_internal {
namespace {

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

// Text of a str object, without caching anything inside it.
// Where: GIL held, any interpreter.
std::string Text(PyObject* str) {
  if (str == nullptr || !PyUnicode_Check(str)) return "?";
  PyObject* bytes = PyUnicode_AsUTF8String(str);
  if (bytes == nullptr) {
    PyErr_Clear();
    return "?";
  }
  std::string s(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
  Py_DECREF(bytes);
  return s;
}

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

struct ThreadInfo {
  unsigned long ident = 0;
  unsigned long native_id = 0;
  std::string name;
  std::vector<std::string> frames;  // innermost first
};

// The target's threads with their frames. Where: GIL held, target current.
std::vector<ThreadInfo> ReadTargetThreads(const python::ThreadStates& ts,
                                          bool all_frames) {
  std::vector<ThreadInfo> threads;
  PyObject* active = nullptr;  // threading._active: ident -> Thread
  PyObject* threading =
      PyDict_GetItemString(PyImport_GetModuleDict(), "threading");
  if (threading != nullptr) {
    active = PyObject_GetAttrString(threading, "_active");
    if (active == nullptr) PyErr_Clear();
    if (active != nullptr && !PyDict_Check(active)) Py_CLEAR(active);
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(ts.target_ts);
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (t == ts.target_ts) continue;
    ThreadInfo info;
    info.ident = t->thread_id;
    info.native_id = t->native_thread_id;
    PyObject* thread = nullptr;
    if (active != nullptr) {
      PyObject* key = PyLong_FromUnsignedLong(info.ident);
      thread = key ? PyDict_GetItem(active, key) : nullptr;  // borrowed
      Py_XDECREF(key);
    }
    if (thread != nullptr) {
      PyObject* name = PyObject_GetAttrString(thread, "_name");
      if (name != nullptr) {
        info.name = Text(name);
        Py_DECREF(name);
      } else {
        PyErr_Clear();
      }
    }
    PyFrameObject* frame = PyThreadState_GetFrame(t);
    // Annex's own helper thread states have neither a frame nor a Thread.
    if (frame == nullptr && thread == nullptr) continue;
    while (frame != nullptr) {
      PyCodeObject* code = PyFrame_GetCode(frame);
      info.frames.push_back(absl::StrFormat(
          "File \"%s\", line %d, in %s", Text(code->co_filename),
          PyFrame_GetLineNumber(frame), Text(code->co_name)));
      Py_DECREF(code);
      PyFrameObject* back = all_frames ? PyFrame_GetBack(frame) : nullptr;
      Py_DECREF(frame);  // released with the target current (rule 10)
      frame = back;
    }
    threads.push_back(std::move(info));
  }
  Py_XDECREF(active);
  return threads;
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
        reply = Ok(DescribeThreads(ts));
        break;
      case RequestKind::kStacks:
        reply = Ok(DescribeStacks(ts));
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

std::string AnnexConsole::DescribeThreads(const python::ThreadStates& ts) {
  python::ScopedTargetSwap swap(ts);
  std::string out;
  for (const ThreadInfo& t : ReadTargetThreads(ts, /*all_frames=*/false)) {
    absl::StrAppendFormat(&out, "Thread %lu (native %lu) \"%s\": %s\n", t.ident,
                          t.native_id, t.name.empty() ? "?" : t.name,
                          t.frames.empty() ? "no Python frame" : t.frames[0]);
  }
  return out;
}

std::string AnnexConsole::DescribeStacks(const python::ThreadStates& ts) {
  python::ScopedTargetSwap swap(ts);
  std::string out;
  for (const ThreadInfo& t : ReadTargetThreads(ts, /*all_frames=*/true)) {
    absl::StrAppendFormat(&out,
                          "Thread %lu (native %lu) \"%s\" (most recent call "
                          "last):\n",
                          t.ident, t.native_id, t.name.empty() ? "?" : t.name);
    for (auto it = t.frames.rbegin(); it != t.frames.rend(); ++it) {
      absl::StrAppend(&out, "  ", *it, "\n");
    }
    if (t.frames.empty()) absl::StrAppend(&out, "  (no Python frame)\n");
    absl::StrAppend(&out, "\n");
  }
  return out;
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
