// Per-user runtime directory for console endpoints. See runtime_dir.h.
#include "monitor/console/internal/runtime_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "monitor/console/internal/fd.h"

namespace annex::console::internal {
namespace {

// A socket younger than this is never called stale on a refused connect:
// its server may be between bind(2) and listen(2).
constexpr time_t kStaleGraceSeconds = 5;

// Connects to a Unix socket path to ask whether anyone listens there.
bool SocketRefuses(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int rc =
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  // A live server will see this as a client that connects and leaves before
  // its hello; that costs it nothing.
  return rc != 0 && (errno == ECONNREFUSED || errno == ENOENT);
}

bool ParsePidName(absl::string_view name, absl::string_view suffix,
                  pid_t* pid) {
  if (!absl::ConsumeSuffix(&name, suffix)) return false;
  int value = 0;
  if (!absl::SimpleAtoi(name, &value) || value <= 0) return false;
  *pid = value;
  return true;
}

void RemoveEndpoint(const std::string& dir, pid_t pid) {
  ::unlink(SocketPath(dir, pid).c_str());
  ::unlink(InfoPath(dir, pid).c_str());
  ::unlink(TokenPath(dir, pid).c_str());
}

}  // namespace

absl::StatusOr<std::string> DefaultRuntimeDir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') {
    // Only trust XDG_RUNTIME_DIR when it is ours; a stale value inherited
    // through sudo would point into another user's directory.
    struct stat st;
    if (::stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
        st.st_uid == ::geteuid()) {
      return absl::StrCat(xdg, "/annex");
    }
  }
  return absl::StrCat("/tmp/annex-", ::geteuid());
}

absl::Status VerifyPrivateDir(const std::string& dir) {
  struct stat st;
  // lstat: a symlink planted by another user must not redirect us.
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoStatus("lstat " + dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory"));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::PermissionDeniedError(absl::StrCat(dir, " is owned by uid ",
                                                    st.st_uid, ", not by us (",
                                                    ::geteuid(), ")"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s has mode %04o; need 0700", dir, st.st_mode & 0777));
  }
  return absl::OkStatus();
}

absl::Status EnsurePrivateDir(const std::string& dir) {
  // mkdir is subject to umask, which can only remove bits: the result is at
  // most 0700, and the verification below catches anything else.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir " + dir);
  }
  return VerifyPrivateDir(dir);
}

std::string SocketPath(absl::string_view dir, pid_t pid) {
  return absl::StrCat(dir, "/", pid, ".sock");
}
std::string InfoPath(absl::string_view dir, pid_t pid) {
  return absl::StrCat(dir, "/", pid, ".info");
}
std::string TokenPath(absl::string_view dir, pid_t pid) {
  return absl::StrCat(dir, "/", pid, ".token");
}

std::string FormatInfo(const ProcessInfo& info) {
  // Newlines in free text would forge keys: replace them.
  auto clean = [](std::string s) {
    for (char& c : s) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return s;
  };
  return absl::StrCat("pid=", info.pid, "\nprogram=", clean(info.program),
                      "\npython_version=", clean(info.python_version),
                      "\nstart_time=", info.start_time,
                      "\ntcp_port=", info.tcp_port, "\n");
}

absl::StatusOr<ProcessInfo> ParseInfo(absl::string_view text) {
  ProcessInfo info;
  bool have_pid = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.first == "pid") {
      int pid = 0;
      have_pid = absl::SimpleAtoi(kv.second, &pid) && pid > 0;
      info.pid = pid;
    } else if (kv.first == "program") {
      info.program = static_cast<std::string>(kv.second);
    } else if (kv.first == "python_version") {
      info.python_version = static_cast<std::string>(kv.second);
    } else if (kv.first == "start_time") {
      if (!absl::SimpleAtoi(kv.second, &info.start_time)) info.start_time = 0;
    } else if (kv.first == "tcp_port") {
      if (!absl::SimpleAtoi(kv.second, &info.tcp_port)) info.tcp_port = 0;
    }
  }
  if (!have_pid) return absl::InvalidArgumentError("info file without pid");
  return info;
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents) {
  std::string tmp = absl::StrCat(path, ".tmp");
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(
      tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("open " + tmp);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n =
        ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = ErrnoStatus("write " + tmp);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = ErrnoStatus("rename " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  std::string out;
  char buf[4096];
  while (out.size() <= max_bytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
  return absl::ResourceExhaustedError(path + " is too large");
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  // EPERM means it exists but belongs to someone else: alive.
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

int CleanStaleEndpoints(const std::string& dir, pid_t keep_pid) {
  if (!VerifyPrivateDir(dir).ok()) return 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::vector<pid_t> stale;
  time_t now = ::time(nullptr);
  while (dirent* e = ::readdir(d)) {
    pid_t pid = 0;
    absl::string_view name = e->d_name;
    bool is_sock = ParsePidName(name, ".sock", &pid);
    if (!is_sock && !ParsePidName(name, ".info", &pid) &&
        !ParsePidName(name, ".token", &pid)) {
      continue;
    }
    if (pid == keep_pid) continue;
    // A socket that accepts a connection has a live server, whatever kill(2)
    // says: a process in another PID namespace (a container, or a sandboxed
    // test sharing this directory) is not visible to kill(2) here, and
    // removing its socket would make it unattachable for good. Only a socket
    // that refuses is stale: at once when kill(2) cannot see its pid, else
    // once older than the grace period (the pid may have been reused, or
    // its server may be between bind(2) and listen(2)). Files left without
    // a socket are stale once their pid is gone.
    const std::string socket_path = SocketPath(dir, pid);
    struct stat st;
    if (::lstat(socket_path.c_str(), &st) == 0) {
      if (!is_sock) continue;  // decided with the socket itself
      if ((!ProcessAlive(pid) || now - st.st_mtime > kStaleGraceSeconds) &&
          SocketRefuses(socket_path)) {
        stale.push_back(pid);
      }
    } else if (!ProcessAlive(pid)) {
      stale.push_back(pid);  // info or token file left without a socket
    }
  }
  ::closedir(d);
  std::sort(stale.begin(), stale.end());
  stale.erase(std::unique(stale.begin(), stale.end()), stale.end());
  for (pid_t pid : stale) RemoveEndpoint(dir, pid);
  return static_cast<int>(stale.size());
}

std::vector<ProcessInfo> ListEndpoints(const std::string& dir) {
  std::vector<ProcessInfo> out;
  if (!VerifyPrivateDir(dir).ok()) return out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = 0;
    if (!ParsePidName(e->d_name, ".info", &pid) || !ProcessAlive(pid)) {
      continue;
    }
    struct stat st;
    if (::lstat(SocketPath(dir, pid).c_str(), &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
      continue;
    }
    absl::StatusOr<std::string> text = ReadSmallFile(InfoPath(dir, pid));
    if (!text.ok()) continue;
    absl::StatusOr<ProcessInfo> info = ParseInfo(*text);
    // The file name is the authority on the pid; a mismatch is a forgery
    // or corruption.
    if (!info.ok() || info->pid != pid) continue;
    out.push_back(*info);
  }
  ::closedir(d);
  std::sort(
      out.begin(), out.end(),
      [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return out;
}

absl::StatusOr<std::string> RandomToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("getrandom");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(bytes));
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // The length of a token is public (always 64); only contents are secret.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace annex::console::internal
