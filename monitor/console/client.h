// Client side of the console protocol: connect to a process's console
// server, say HELLO, send requests and read their replies.
//
// Used by the `annex` command (cli.h) and by tests. Blocking I/O with
// deadlines; never raises SIGPIPE (MSG_NOSIGNAL).
//
//   absl::StatusOr<std::unique_ptr<Client>> client =
//       Client::ConnectToPid(pid, ClientOptions());
//   if (!client.ok()) { ... }
//   absl::StatusOr<ReplyMessage> reply =
//       (*client)->Call(RequestKind::kExec, "print(1 + 1)");
//   // reply->output == "2\n"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitor/console/internal/fd.h"
#include "monitor/console/protocol.h"

namespace annex::console {

struct ClientOptions {
  // Where to look for <pid>.sock; empty = the per-user default directory.
  std::string socket_dir;
  // Sent in the HELLO, for the server's logs.
  std::string client_name = "annex";
  // Limit for connecting plus the handshake.
  absl::Duration connect_timeout = absl::Seconds(5);
  // TCP instead of the Unix socket (tcp_port != 0): loopback only; `token`
  // empty = read it from <socket_dir>/<pid>.token.
  int tcp_port = 0;
  std::string token;
  // How long `annex exec/attach/stacks` wait for each command's reply
  // before they interrupt it (cli.h); infinite = no limit.
  absl::Duration command_timeout = absl::InfiniteDuration();
};

class Client {
 public:
  // Connects to <socket_dir>/<pid>.sock (or TCP when options.tcp_port != 0)
  // and completes the handshake. Errors: NotFound (no such endpoint),
  // Unavailable (nobody listens, server stopping), PermissionDenied (uid or
  // token refused), ResourceExhausted (too many clients), DeadlineExceeded.
  static absl::StatusOr<std::unique_ptr<Client>> ConnectToPid(
      pid_t pid, const ClientOptions& options);
  static absl::StatusOr<std::unique_ptr<Client>> ConnectToPath(
      const std::string& socket_path, const ClientOptions& options);
  static absl::StatusOr<std::unique_ptr<Client>> ConnectTcp(
      int port, const std::string& token, const ClientOptions& options);

  const WelcomeMessage& welcome() const { return welcome_; }

  // Sends one request and waits for its reply. While waiting, each time
  // `interrupt_fd` (if >= 0) becomes readable it is drained and an INTERRUPT
  // for this request is sent (how `annex attach` forwards Ctrl-C). ERROR
  // frames from the server become a Status (fatal ones also close the
  // client). A request larger than the server's limit is refused here
  // (InvalidArgument) without being sent. Not thread-safe: one call at a
  // time.
  absl::StatusOr<ReplyMessage> Call(
      RequestKind kind, const std::string& text, int interrupt_fd = -1,
      absl::Duration timeout = absl::InfiniteDuration());

  // Low level, for tests and pipelining: send raw bytes / read one frame.
  absl::Status SendBytes(const std::string& bytes);
  // DeadlineExceeded on timeout, Unavailable on EOF.
  absl::StatusOr<Frame> ReadFrame(absl::Duration timeout);
  int fd() const { return fd_.get(); }

 private:
  explicit Client(internal::UniqueFd fd) : fd_(std::move(fd)) {}
  absl::Status Handshake(const std::string& token, const ClientOptions& o);

  internal::UniqueFd fd_;
  std::string in_;
  WelcomeMessage welcome_;
  uint32_t next_request_id_ = 1;
};

// Turns an ERROR frame into the Status a caller can act on.
absl::Status ErrorToStatus(const ErrorMessage& error);

}  // namespace annex::console
