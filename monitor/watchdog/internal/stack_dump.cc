// Stack dumps without the GIL: see stack_dump.h.
#include "monitor/watchdog/internal/stack_dump.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_format.h"
#include "monitor/python/cpython_peek.h"

namespace annex::watchdog::internal {
namespace {

// Where: any thread, no Python.
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Where: any thread, no Python.
std::string OsThreadName(unsigned long native_id) {
  if (native_id == 0) return "";
  std::string path = absl::StrFormat("/proc/self/task/%lu/comm", native_id);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return "";
  std::string name(buf, static_cast<size_t>(n));
  while (!name.empty() && (name.back() == '\n' || name.back() == '\0')) {
    name.pop_back();
  }
  return name;
}

}  // namespace

ScopedThreadListLock::ScopedThreadListLock(int timeout_us)
    : locked_(AnnexPeekLockThreadList(timeout_us) != 0) {}

ScopedThreadListLock::~ScopedThreadListLock() {
  if (locked_) AnnexPeekUnlockThreadList();
}

ThreadIds ReadThreadIds(PyThreadState* ts) {
  ThreadIds ids;
  AnnexPeekThreadIds(ts, &ids.ident, &ids.native_id);
  ids.name = OsThreadName(ids.native_id);
  return ids;
}

int WriteAllThreads(int fd, PyInterpreterState* interp,
                    const PyThreadState* gil_holder, int max_depth) {
  const unsigned long main_ident = AnnexPeekMainThreadIdent();
  int count = 0;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (++count > 1000) break;  // a torn list cannot loop us
    ThreadIds ids = ReadThreadIds(ts);
    std::string header = absl::StrFormat(
        "Thread 0x%016lx (native %lu, \"%s\")%s%s (most recent call first):\n",
        ids.ident, ids.native_id, ids.name,
        ids.ident == main_ident ? " [main]" : "",
        ts == gil_holder ? " [holds GIL]" : "");
    WriteAll(fd, header);
    AnnexPeekWriteStack(fd, ts, max_depth);
    WriteAll(fd, "\n");
  }
  return count;
}

}  // namespace annex::watchdog::internal
