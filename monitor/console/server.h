// The console server: lets `annex attach/exec` talk to this process.
//
// It runs in the host process on its own I/O thread (poll(2), nonblocking
// sockets, MSG_NOSIGNAL, no signal handlers) and never touches Python:
// commands go to a CommandExecutor (executor.h) on one worker thread per
// client. Security (docs/design.md, Security):
//  - a Unix socket <dir>/<pid>.sock, mode 0600, in a per-user directory
//    only the owner can enter (0700, verified; refused if not ours);
//  - the peer's uid (SO_PEERCRED) must equal ours;
//  - TCP is off by default; when on it binds 127.0.0.1 only and the client
//    must present the token stored in <dir>/<pid>.token (0600);
//  - running code in the target (kExecTarget, kInterruptThread) needs
//    `allow_exec_target`;
//  - every byte is untrusted: frame limit, queue limit, output buffer limit,
//    handshake and idle timeouts, max clients. A misbehaving client gets an
//    ERROR frame or is disconnected; other clients and the host are unaffected.
//
//   MyExecutor executor;                       // must outlive the server
//   ServerOptions options;
//   options.python_version = "3.11.2";
//   absl::StatusOr<std::unique_ptr<Server>> server =
//       Server::Start(options, &executor);
//   if (!server.ok()) { ... }
//   ...
//   (*server)->Stop();                         // or let the destructor do it
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitor/console/executor.h"

namespace annex::console {

struct ServerOptions {
  // Directory for the socket and its files; empty = the per-user default
  // ($XDG_RUNTIME_DIR/annex or /tmp/annex-<uid>). Created 0700 if missing;
  // refused unless it is ours and not accessible to others.
  std::string socket_dir;
  // Name used for <pid>.sock/.info/.token; 0 = getpid(). Tests use this to
  // run several servers in one process.
  pid_t endpoint_id = 0;
  // Shown by `annex ps` and in the WELCOME; empty program = /proc/self/exe's
  // first command-line word.
  std::string program;
  std::string python_version;

  // Loopback TCP listener, off unless asked for. Port 0 = any free port.
  bool enable_tcp = false;
  int tcp_port = 0;

  // Concurrent authenticated clients (HELLO done), counting clients whose
  // command still runs after their client left. Connections still in their
  // handshake never take these slots (see below).
  int max_clients = 8;
  // Connections that have not completed the HELLO yet, per kind of
  // listener: Unix-socket peers (already known to have our uid) and TCP
  // peers (unknown until the token is checked) have separate pools, so
  // nobody on TCP can keep the owner's Unix clients out.
  int max_unauthenticated = 16;
  // Of those, how many one TCP source address may hold. (On the Unix socket
  // every peer has our uid, so its per-uid limit is max_unauthenticated.)
  int max_unauthenticated_per_peer = 4;
  // Largest frame payload accepted from a client; replies are cut to fit it.
  size_t max_payload = kDefaultMaxPayload;
  // Replies queued for a client that does not read; over this it is dropped.
  size_t max_output_buffer = size_t{8} << 20;
  // Requests waiting behind the running one; more are refused (kRefused).
  size_t max_queued_requests = 32;
  // A client must complete the HELLO within this time.
  absl::Duration handshake_timeout = absl::Seconds(5);
  // A client with no command running and no bytes received for this long
  // is closed.
  absl::Duration idle_timeout = absl::Minutes(30);
  // Permission to run code in the target (docs/design.md rule 9).
  bool allow_exec_target = false;
};

class Server {
 public:
  // Creates the socket (and TCP listener), writes the info file, removes
  // stale endpoints of dead processes in the directory, and starts the I/O
  // thread. `executor` must outlive the server. Errors: PermissionDenied
  // (directory not ours / too open), AlreadyExists (a live server already
  // owns this endpoint), InvalidArgument (bad options, path too long),
  // Internal for other system call failures.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, CommandExecutor* executor);

  // Stop() if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Closes all connections (clients get an ERROR frame), cancels running
  // commands and waits for them to return, joins all threads and removes the
  // socket, info and token files. Idempotent. Call from one thread at a
  // time, never from inside the executor (it would wait for itself).
  void Stop();

  const std::string& socket_path() const;
  const std::string& info_path() const;
  // Empty when TCP is off.
  const std::string& token_path() const;
  // 0 when TCP is off.
  int tcp_port() const;

  // Connections plus clients still finishing a command; for tests and
  // status displays. Any thread.
  int ActiveClients() const;

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace annex::console
