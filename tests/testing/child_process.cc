// Child processes for end-to-end tests: see child_process.h.
#include "tests/testing/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

extern char** environ;

namespace annex::testing {

std::vector<std::string> WithSanitizerRuntime(std::vector<std::string> env) {
#if defined(__SANITIZE_ADDRESS__)
  std::string runtime;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        const char* name = info->dlpi_name;
        if (name != nullptr && std::strstr(name, "/libasan.so") != nullptr) {
          *static_cast<std::string*>(data) = name;
          return 1;
        }
        return 0;
      },
      &runtime);
  if (!runtime.empty()) env.push_back("LD_PRELOAD=" + runtime);
#endif
  return env;
}

namespace {

// A started child process: its pid and our ends of its stdin, stdout and
// stderr pipes (-1 each when it could not start).
struct Child {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
};

// The environment of a child: ours, less the names `env` names, plus its
// "K=V".
std::vector<std::string> MergedEnvironment(
    const std::vector<std::string>& env) {
  std::vector<std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool named = false;
    for (const std::string& kv : env) {
      named = named || kv.substr(0, kv.find('=')) == name;
    }
    if (!named) merged.push_back(entry);
  }
  for (const std::string& kv : env) {
    if (kv.find('=') != std::string::npos) merged.push_back(kv);
  }
  return merged;
}

// argv or an environment as the NULL-ended array exec takes; points into
// `strings`.
std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Child Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env) {
  const std::vector<std::string> merged = MergedEnvironment(env);
  // Built before fork: other threads (a BackgroundProcess's reader) may hold
  // the allocator's lock at the fork, so the child only calls
  // async-signal-safe functions.
  std::vector<char*> args = CStrings(argv), envp = CStrings(merged);
  int in[2], out[2], err[2];
  // Close-on-exec: another thread's child must not inherit our pipes (it
  // would hold them open, and this read would wait for it to exit).
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    return {};
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    for (int fd : {in[1], out[0], err[0]}) close(fd);
    return {};
  }
  return {pid, in[1], out[0], err[0]};
}

// Writes `input` to the child's stdin, reads its stdout and stderr until
// both close and waits until it exited, without reaping it: a
// BackgroundProcess may still signal the pid, which no other process can
// have meanwhile.
// `sink(stream, bytes, n)` sees each read as it arrives (stream 1: stdout,
// 2: stderr), for a BackgroundProcess's live view of the output.
// A child whose `in` is -1 keeps its stdin open: its owner writes to it.
ProcessResult Communicate(
    const Child& child, const std::string& input,
    const std::function<void(int, const char*, size_t)>& sink = nullptr) {
  ProcessResult r;
  if (child.pid < 0) return r;
  if (child.in >= 0) {
    if (!input.empty()) (void)!write(child.in, input.data(), input.size());
    close(child.in);
  }
  pollfd fds[2] = {{child.out, POLLIN, 0}, {child.err, POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  // Until both pipes close: no wall-clock limit, which a loaded machine
  // passes (issue 16: a 30 s silence lost the rest of a test suite's
  // output); a process that hangs meets Bazel's test timeout instead.
  while (open_fds > 0 && poll(fds, 2, -1) > 0) {
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, n);
        if (sink) sink(i + 1, buf, static_cast<size_t>(n));
      }
    }
  }
  siginfo_t info{};
  while (waitid(P_PID, child.pid, &info, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR) {
  }
  r.exit_code =
      info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return r;
}

void Reap(pid_t pid) {
  if (pid > 0) waitpid(pid, nullptr, 0);
}

}  // namespace

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& input,
                         const std::vector<std::string>& env) {
  Child child = Spawn(argv, env);
  ProcessResult r = Communicate(child, input);
  Reap(child.pid);
  return r;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv,
                                     std::string input,
                                     const std::vector<std::string>& env) {
  Start(argv, std::move(input), env, false);
}

BackgroundProcess::BackgroundProcess(OpenInput,
                                     const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env) {
  Start(argv, "", env, true);
}

void BackgroundProcess::Start(const std::vector<std::string>& argv,
                              std::string input,
                              const std::vector<std::string>& env,
                              bool keep_input) {
  Child child = Spawn(argv, env);
  pid_ = child.pid;
  if (keep_input) {
    // A write to a program that stopped reading fails (Write() says so)
    // instead of killing the test with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    input_ = child.in;
    child.in = -1;
  }
  thread_ = std::thread([this, child, input = std::move(input)] {
    ProcessResult r =
        Communicate(child, input, [this](int stream, const char* b, size_t n) {
          absl::MutexLock lock(&mu_);
          (stream == 1 ? result_.out : result_.err).append(b, n);
        });
    absl::MutexLock lock(&mu_);
    result_ = std::move(r);
    Reap(pid_);
    ended_ = true;
  });
}

BackgroundProcess::~BackgroundProcess() {
  {
    // A test that failed before ending its program: end it here rather
    // than wait for Bazel's timeout. Unreaped until ended_, so the pid is
    // still the child's.
    absl::MutexLock lock(&mu_);
    if (!ended_ && pid_ > 0) kill(pid_, SIGKILL);
  }
  CloseInput();
  Join();
}

bool BackgroundProcess::Write(const std::string& text) {
  size_t done = 0;
  while (input_ >= 0 && done < text.size()) {
    const ssize_t n = write(input_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return input_ >= 0;
}

void BackgroundProcess::CloseInput() {
  if (input_ >= 0) close(input_);
  input_ = -1;
}

void BackgroundProcess::Signal(int sig) {
  // Unreaped until ended_, so the pid is still the child's.
  absl::MutexLock lock(&mu_);
  if (!ended_ && pid_ > 0) kill(pid_, sig);
}

bool BackgroundProcess::WaitForOutput(const std::string& needle, size_t from) {
  absl::MutexLock lock(&mu_);
  auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ || result_.out.find(needle, from) != std::string::npos;
  };
  mu_.Await(absl::Condition(&found));
  return result_.out.find(needle, from) != std::string::npos;
}

std::string BackgroundProcess::out() const {
  absl::MutexLock lock(&mu_);
  return result_.out;
}

std::string BackgroundProcess::err() const {
  absl::MutexLock lock(&mu_);
  return result_.err;
}

bool BackgroundProcess::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

const ProcessResult& BackgroundProcess::Join() {
  CloseInput();  // a program that reads to the end of its input ends
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return result_;  // final: the thread that wrote it has ended
}

TerminalProcess::TerminalProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, int rows,
                                 int columns) {
  const std::vector<std::string> merged = MergedEnvironment(env);
  std::vector<char*> args = CStrings(argv), envp = CStrings(merged);
  struct winsize ws {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(columns);
  pid_ = forkpty(&master_, nullptr, nullptr, &ws);
  if (pid_ == 0) {
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  if (pid_ < 0) return;
  reader_ = std::thread([this] {
    char buf[4096];
    while (true) {
      const ssize_t n = read(master_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      absl::MutexLock lock(&mu_);
      if (n <= 0) {  // EIO once every holder of the slave side closed it
        closed_ = true;
        return;
      }
      screen_.append(buf, static_cast<size_t>(n));
    }
  });
}

TerminalProcess::~TerminalProcess() {
  if (pid_ > 0 && status_ < 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (reader_.joinable()) reader_.join();
  if (master_ >= 0) close(master_);
}

void TerminalProcess::Resize(int rows, int columns) {
  struct winsize ws {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(columns);
  ioctl(master_, TIOCSWINSZ, &ws);
}

bool TerminalProcess::Type(const std::string& keys) {
  return write(master_, keys.data(), keys.size()) ==
         static_cast<ssize_t>(keys.size());
}

std::string TerminalProcess::WaitFor(
    size_t from, const std::function<bool(const std::string&)>& done) {
  absl::MutexLock lock(&mu_);
  auto satisfied = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || done(screen_.substr(std::min(from, screen_.size())));
  };
  mu_.Await(absl::Condition(&satisfied));
  return screen_;
}

std::string TerminalProcess::WaitForText(size_t from, const std::string& text) {
  return WaitFor(from, [&](const std::string& s) {
    return s.find(text) != std::string::npos;
  });
}

size_t TerminalProcess::size() const {
  absl::MutexLock lock(&mu_);
  return screen_.size();
}

int TerminalProcess::Wait() {
  if (status_ >= 0 || pid_ <= 0) return status_;
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return status_;
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/annex/" + path;
}

std::string AnnexBinary() { return Runfile("monitor/cli/annex"); }

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string NewTempDir(const std::string& name) {
  std::string templ = "/tmp/annex-" + name + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

std::string PythonModuleDir(const std::string& name) {
  std::string dir = NewTempDir(name);
  if (dir.empty() || mkdir((dir + "/annex").c_str(), 0700) != 0) return "";
  const std::string from = Runfile("packaging/python/");
  // Where Bazel puts each file, and where the install puts it.
  const std::pair<const char*, const char*> files[] = {
      {"annex/__init__.py", "annex/__init__.py"},
      {"annex/__main__.py", "annex/__main__.py"},
      {"_annex.so", "annex/_annex.so"}};
  for (const auto& [built, installed] : files) {
    std::ifstream in(from + built, std::ios::binary);
    std::ofstream out(dir + "/" + installed, std::ios::binary);
    out << in.rdbuf();
    if (!in.good() || !out.good()) return "";
  }
  return dir;
}

void WaitForFile(const std::string& path) {
  while (!FileExists(path)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

pid_t ListedPid(const std::string& ps_out, const std::string& needle) {
  size_t at = ps_out.find(needle);
  if (at == std::string::npos) return 0;
  size_t line = ps_out.rfind('\n', at);
  return std::atoi(ps_out.c_str() + (line == std::string::npos ? 0 : line + 1));
}

pid_t WaitForAnnexPs(const std::string& env, const std::string& needle,
                     const BackgroundProcess& program) {
  while (true) {
    // Read before asking: a program that had ended before a `ps` that does
    // not list it will never be listed.
    const bool ended = program.ended();
    pid_t pid =
        ListedPid(RunProcess({AnnexBinary(), "ps"}, "", {env}).out, needle);
    if (pid > 0) return pid;
    if (ended) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace annex::testing
