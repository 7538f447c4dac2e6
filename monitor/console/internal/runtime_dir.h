// Where console endpoints live on disk, and how they are kept private.
//
// Each process that runs a console server owns three files in a per-user
// directory that only the user can enter (mode 0700, owned by the user,
// verified on every use, never followed through a symlink):
//   <pid>.sock   the Unix socket (mode 0600)
//   <pid>.info   key=value lines for `annex ps` (pid, program, ...)
//   <pid>.token  the TCP token, only when TCP is on (mode 0600)
// The directory is $XDG_RUNTIME_DIR/annex/ when XDG_RUNTIME_DIR is set, else
// /tmp/annex-<uid>/.
//
//   absl::StatusOr<std::string> dir = DefaultRuntimeDir();
//   absl::Status ok = EnsurePrivateDir(*dir);   // creates or refuses
//   std::string sock = SocketPath(*dir, getpid());
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace annex::console::internal {

// The per-user directory (not created). Never fails on a sane system; kept
// StatusOr for a missing uid-to-path mapping in the future.
absl::StatusOr<std::string> DefaultRuntimeDir();

// Creates `dir` (mode 0700) if missing, then verifies it: a real directory
// (not a symlink), owned by our effective uid, no group/other permission
// bits. PermissionDenied when owned by someone else or too open,
// FailedPrecondition when it is not a directory. Never chmods an existing
// directory: one that is too open may already have been used by others.
absl::Status EnsurePrivateDir(const std::string& dir);

// Only the verification part of EnsurePrivateDir (NotFound when missing).
absl::Status VerifyPrivateDir(const std::string& dir);

std::string SocketPath(absl::string_view dir, pid_t pid);
std::string InfoPath(absl::string_view dir, pid_t pid);
std::string TokenPath(absl::string_view dir, pid_t pid);

// What `annex ps` shows about a process, from its <pid>.info file.
struct ProcessInfo {
  pid_t pid = 0;
  std::string program;
  std::string python_version;
  int64_t start_time = 0;  // unix seconds
  int tcp_port = 0;        // 0 when TCP is off
};

std::string FormatInfo(const ProcessInfo& info);
// Tolerates unknown keys (newer writers); InvalidArgument without a valid pid.
absl::StatusOr<ProcessInfo> ParseInfo(absl::string_view text);

// Writes `contents` to `path` with mode 0600 via a temporary file and
// rename(2), so readers never see half a file.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);
// Reads a small file (at most `max_bytes`), refusing symlinks.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          size_t max_bytes = size_t{64} * 1024);

// True when a process with this pid exists (kill(pid, 0) does not say ESRCH).
bool ProcessAlive(pid_t pid);

// Removes the files of endpoints whose socket refuses connections and whose
// process is gone or whose socket is older than a few seconds (pid reused;
// the age keeps a server that is binding right now safe), and files left
// without a socket whose process is gone. A socket
// that accepts is never removed, even when kill(2) cannot see its process
// (another PID namespace sharing the directory, e.g. a sandboxed test).
// Leaves `keep_pid`'s files alone. Returns how many endpoints were removed.
int CleanStaleEndpoints(const std::string& dir, pid_t keep_pid);

// Lists the endpoints in `dir` with a live process and a readable info file.
std::vector<ProcessInfo> ListEndpoints(const std::string& dir);

// 32 random bytes from getrandom(2), hex encoded.
absl::StatusOr<std::string> RandomToken();

// Compares without an early exit, so timing does not reveal a prefix.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace annex::console::internal
