// Stack dumps without the GIL: see stack_dump.h.
#include "monitor/watchdog/internal/stack_dump.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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

std::vector<PythonThreadName> CopyPythonThreadNames() {
  std::vector<PythonThreadName> names;
  AnnexPeekPythonThreadNames(
      [](void* ctx, unsigned long ident, const char* name) {
        static_cast<std::vector<PythonThreadName>*>(ctx)->push_back(
            {ident, 0, name});
      },
      &names);
  if (names.empty()) return names;
  // Native ids from the thread states (one pass; the GIL keeps the list
  // still).
  std::vector<std::pair<unsigned long, unsigned long>> natives;
  int budget = 100000;
  for (PyThreadState* ts =
           PyInterpreterState_ThreadHead(PyInterpreterState_Main());
       ts != nullptr && --budget > 0; ts = PyThreadState_Next(ts)) {
    unsigned long ident = 0;
    unsigned long native_id = 0;
    AnnexPeekThreadIds(ts, &ident, &native_id);
    natives.emplace_back(ident, native_id);
  }
  std::sort(natives.begin(), natives.end());
  for (PythonThreadName& n : names) {
    auto it = std::lower_bound(natives.begin(), natives.end(),
                               std::make_pair(n.ident, 0UL));
    if (it != natives.end() && it->first == n.ident) {
      n.native_id = it->second;
    }
  }
  return names;
}

ThreadIds ReadThreadIds(PyThreadState* ts) {
  ThreadIds ids;
  AnnexPeekThreadIds(ts, &ids.ident, &ids.native_id);
  ids.name = OsThreadName(ids.native_id);
  return ids;
}

std::string PythonNameOf(const std::vector<PythonThreadName>& names,
                         unsigned long ident, unsigned long native_id) {
  for (const PythonThreadName& n : names) {
    if (n.ident == ident && n.native_id == native_id) return n.name;
  }
  return "";
}

int WriteAllThreads(int fd, PyInterpreterState* interp,
                    const PyThreadState* gil_holder, int max_depth,
                    const std::vector<unsigned long>& hidden,
                    const std::vector<PythonThreadName>& python_names) {
  const unsigned long main_ident = AnnexPeekMainThreadIdent();
  int count = 0;
  int steps = 0;
  int left_out = 0;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (++steps > 1000) break;  // a torn list cannot loop us
    unsigned long ident = 0;
    unsigned long native_id = 0;
    AnnexPeekThreadIds(ts, &ident, &native_id);
    if (std::find(hidden.begin(), hidden.end(), ident) != hidden.end()) {
      ++left_out;
      continue;
    }
    ++count;
    ThreadIds ids = ReadThreadIds(ts);
    const std::string python_name =
        PythonNameOf(python_names, ids.ident, ids.native_id);
    std::string header = absl::StrFormat(
        "Thread 0x%016lx (native %lu, \"%s\"%s)%s%s (most recent call "
        "first):\n",
        ids.ident, ids.native_id, ids.name,
        python_name.empty() ? ""
                            : absl::StrCat(", Python \"", python_name, "\""),
        ids.ident == main_ident ? " [main]" : "",
        ts == gil_holder ? " [holds GIL]" : "");
    WriteAll(fd, header);
    AnnexPeekWriteStack(fd, ts, max_depth);
    WriteAll(fd, "\n");
  }
  if (left_out > 0) {
    WriteAll(fd, absl::StrFormat("(%d thread state%s of Annex's own threads "
                                 "not shown)\n",
                                 left_out, left_out == 1 ? "" : "s"));
  }
  return count;
}

}  // namespace annex::watchdog::internal
