// Test support for the watchdog tests: see test_support.h.
#include "tests/watchdog/test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

namespace annex::watchdog::testing {
namespace {

std::atomic<bool> g_released{false};
std::atomic<bool> g_gate{false};
std::atomic<int64_t> g_deadline_ns{0};

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

bool IsReleased() {
  return g_released.load() || NowNs() > g_deadline_ns.load();
}

// Where: target thread, GIL held.
PyObject* Released(PyObject*, PyObject*) {
  return PyBool_FromLong(IsReleased());
}

// Spins in C with the GIL held (no bytecode boundary) until released.
// Where: target thread, GIL held (and kept).
PyObject* SpinInC(PyObject*, PyObject*) {
  while (!IsReleased()) {
  }
  Py_RETURN_NONE;
}

// Where: target thread, GIL held.
PyObject* Gate(PyObject*, PyObject*) {
  return PyBool_FromLong(g_gate.load() || NowNs() > g_deadline_ns.load());
}

PyMethodDef kMethods[] = {
    {"gate", Gate, METH_NOARGS, "True once the test opened the gate."},
    {"released", Released, METH_NOARGS, "True once the test released loops."},
    {"spin_in_c", SpinInC, METH_NOARGS, "Spin in C holding the GIL."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_wdtest", nullptr, -1, kMethods};

}  // namespace

void InstallTestModule(absl::Duration safety) {
  g_released.store(false);
  g_gate.store(false);
  g_deadline_ns.store(NowNs() + absl::ToInt64Nanoseconds(safety));
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  if (PyDict_GetItemString(modules, "_wdtest") != nullptr) return;
  PyObject* module = PyModule_Create(&kModule);
  if (module == nullptr ||
      PyDict_SetItemString(modules, "_wdtest", module) != 0) {
    PyErr_Print();
  }
  Py_XDECREF(module);
}

void Release() { g_released.store(true); }

void OpenGate() { g_gate.store(true); }

std::function<void(const Event&)> EventRecorder::Callback(bool release) {
  return [this, release](const Event& e) {
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    }
    if (release) Release();
  };
}

std::vector<Event> EventRecorder::WaitFor(size_t count,
                                          absl::Duration timeout) {
  PyThreadState* saved = nullptr;
  if (PyGILState_Check()) saved = PyEval_SaveThread();  // test main thread only
  {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return events_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  }
  if (saved != nullptr) PyEval_RestoreThread(saved);
  return events();
}

std::vector<Event> EventRecorder::events() {
  absl::MutexLock lock(&mu_);
  return events_;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  PyThreadState* saved = PyGILState_Check() ? PyEval_SaveThread() : nullptr;
  const absl::Time deadline = absl::Now() + timeout;
  bool ok = done();
  while (!ok && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    ok = done();
  }
  if (saved != nullptr) PyEval_RestoreThread(saved);
  return ok;
}

namespace {

std::string HttpGetWithoutGil(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (response.compare(0, 12, "HTTP/1.1 200") != 0 &&
      response.compare(0, 12, "HTTP/1.0 200") != 0) {
    return "";
  }
  size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace

std::string HttpGet(int port, const std::string& path) {
  // A host thread that holds the GIL while it waits on a socket would read
  // as a busy or stuck main thread to the watchdog under load.
  // (PyGILState_Check says 1 before Python is initialized: ask both.)
  PyThreadState* saved =
      Py_IsInitialized() && PyGILState_Check() ? PyEval_SaveThread() : nullptr;
  std::string body = HttpGetWithoutGil(port, path);
  if (saved != nullptr) PyEval_RestoreThread(saved);
  return body;
}

double MetricValue(const std::string& exposition,
                   const std::string& name_and_labels) {
  const std::string key = name_and_labels + " ";
  size_t pos = 0;
  while ((pos = exposition.find(key, pos)) != std::string::npos) {
    if (pos == 0 || exposition[pos - 1] == '\n') {
      return std::strtod(exposition.c_str() + pos + key.size(), nullptr);
    }
    pos += key.size();
  }
  return -1;
}

}  // namespace annex::watchdog::testing
