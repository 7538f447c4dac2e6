// The seam between the console server (sockets, no Python) and whatever runs
// console commands (the annex thread, wired elsewhere).
//
// The server never touches Python. For each client (a connection past its
// HELLO, named by the WELCOME's client id) it owns one worker thread that
// calls the executor's blocking Execute() for that client's requests, one
// at a time and in order; clients run concurrently,
// so an executor that has a single place to run code (the annex thread)
// queues internally. Cancellation is per call:
//
//   class AnnexExecutor : public CommandExecutor {
//     Reply Execute(uint64_t client_id, const Request& req,
//                   const Cancellation& cancel) override {
//       // queue to the annex thread; its trace hook polls
//       // cancel.IsCancelled() and raises KeyboardInterrupt in the annex.
//     }
//     void Interrupt(uint64_t client_id) override { /* wake the waiter */ }
//     ...
//   };
#pragma once

#include <cstdint>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "monitor/console/protocol.h"

namespace annex::console {

// One command, as the server hands it to the executor. Dot commands of the
// CLI (`.threads`, `.stacks`, ...) arrive as their own kinds; `kHelp` and
// refused kinds (`kExecTarget`, `kInterruptThread` without the permission)
// never reach the executor.
struct Request {
  RequestKind kind = RequestKind::kExec;
  std::string text;  // code, or the argument of a dot command
};

// The result of one command. `status` is the exit status the client sees:
// kOk, kError (with `error` = traceback), kIncomplete (kInteractive only:
// the statement needs more lines), kInterrupted.
struct Reply {
  ReplyStatus status = ReplyStatus::kOk;
  int32_t exit_code = 0;  // SystemExit(n) -> n; `annex exec` exits with it
  std::string output;     // what the code printed (stdout, then displayhook)
  std::string error;      // traceback or error text
};

// Set once when the running command should stop: the client sent an
// INTERRUPT (Ctrl-C), disconnected, or the server is stopping. One object
// per Execute() call, so a late cancel can never hit the next command.
// Thread safety: all methods may be called from any thread.
class Cancellation {
 public:
  bool IsCancelled() const { return done_.HasBeenNotified(); }
  // Sleeps until cancelled or `timeout` passed; true when cancelled. For
  // executors (and test fakes) that wait on something.
  bool WaitFor(absl::Duration timeout) const {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  // Idempotent.
  void Cancel() {
    if (!done_.HasBeenNotified()) done_.Notify();
  }

 private:
  absl::Notification done_;
};

// Implemented by the component that runs code. The server calls:
//  - OpenClient(id) on the client's worker thread before its first
//    Execute; each client gets its own namespace.
//  - Execute(...) on that worker, blocking, for as long as it takes.
//  - Interrupt(id) from the server's I/O thread right after cancelling the
//    in-flight call's Cancellation: a wake-up hint; the authority is
//    Cancellation::IsCancelled(). Must not block and must not call back
//    into the Server. May race with Execute returning: ignore it then.
//  - CloseClient(id) on the worker after the last Execute returned.
// An executor that queues work for a single thread should check
// IsCancelled() when the work is dequeued too: the client may have left
// while the command waited its turn.
// Server::Stop() cancels and waits for every in-flight Execute, so an
// executor that ignores cancellation makes Stop() wait for it.
class CommandExecutor {
 public:
  virtual ~CommandExecutor() = default;
  virtual void OpenClient(uint64_t client_id) = 0;
  virtual void CloseClient(uint64_t client_id) = 0;
  virtual Reply Execute(uint64_t client_id, const Request& request,
                        const Cancellation& cancel) = 0;
  virtual void Interrupt(uint64_t client_id) = 0;
};

}  // namespace annex::console
