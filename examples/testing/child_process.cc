// Test support: child processes for the examples' tests.
#include "examples/testing/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"

extern char** environ;

namespace annex::examples {

std::string RunfilePath(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/annex/" + path;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  for (int fd : {stdin_, stdout_, stderr_}) {
    if (fd >= 0) ::close(fd);
  }
}

bool ChildProcess::Start(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env) {
  if (argv.empty() || pid_ > 0) return false;
  // A child that exits before reading its input must not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  // The environment: ours, with `env` replacing entries of the same name.
  std::vector<std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& add : env) {
      if (add.substr(0, add.find('=')) == name) replaced = true;
    }
    if (!replaced) merged.push_back(entry);
  }
  merged.insert(merged.end(), env.begin(), env.end());
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : merged)
    cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return false;
  if (::pipe2(out, O_CLOEXEC) != 0) return false;
  if (::pipe2(err, O_CLOEXEC) != 0) return false;
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    // Default signal handling, whatever this process ignores or blocks:
    // exec keeps ignored signals ignored, and Python then installs no
    // KeyboardInterrupt handler for SIGINT.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  stdin_ = in[1];
  stdout_ = out[0];
  stderr_ = err[0];
  return true;
}

bool ChildProcess::Write(const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(stdin_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void ChildProcess::CloseStdin() {
  if (stdin_ >= 0) ::close(stdin_);
  stdin_ = -1;
}

void ChildProcess::Pump(absl::Duration wait) {
  pollfd fds[2] = {{stdout_, POLLIN, 0}, {stderr_, POLLIN, 0}};
  int ms = static_cast<int>(absl::ToInt64Milliseconds(wait));
  if (::poll(fds, 2, ms < 0 ? 0 : ms) <= 0) return;
  int* fd_of[2] = {&stdout_, &stderr_};
  std::string* text_of[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (fds[i].revents == 0) continue;
    char buf[4096];
    ssize_t n = ::read(*fd_of[i], buf, sizeof(buf));
    if (n > 0) {
      text_of[i]->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(*fd_of[i]);
      *fd_of[i] = -1;  // poll ignores negative descriptors
    }
  }
}

bool ChildProcess::WaitForOutput(const std::string& needle,
                                 absl::Duration timeout, size_t from) {
  absl::Time deadline = absl::Now() + timeout;
  while (out_.find(needle, from) == std::string::npos) {
    absl::Time now = absl::Now();
    if (now >= deadline || (stdout_ < 0 && stderr_ < 0)) return false;
    Pump(std::min(deadline - now, absl::Milliseconds(100)));
  }
  return true;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  bool timed_out = false;
  while (true) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (absl::Now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      timed_out = true;
      break;
    }
    Pump(absl::Milliseconds(20));
  }
  pid_ = -1;
  // Whatever is still in the pipes; bounded in case a grandchild keeps
  // them open.
  absl::Time drain_deadline = absl::Now() + absl::Seconds(2);
  while ((stdout_ >= 0 || stderr_ >= 0) && absl::Now() < drain_deadline) {
    Pump(absl::Milliseconds(100));
  }
  if (timed_out) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

ChildResult RunChild(const std::vector<std::string>& argv,
                     const std::vector<std::string>& env,
                     const std::string& input, absl::Duration timeout) {
  ChildProcess child;
  ChildResult result;
  if (!child.Start(argv, env)) {
    result.err = std::string("cannot start ") + argv[0];
    return result;
  }
  child.Write(input);
  child.CloseStdin();
  result.exit_code = child.Wait(timeout);
  result.out = child.out();
  result.err = child.err();
  return result;
}

}  // namespace annex::examples
