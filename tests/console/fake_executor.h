// Test doubles for the console server: a CommandExecutor driven by the text
// of each request, so tests over a real socket can script behaviour, and a
// private temporary directory short enough for a Unix socket path.
//
//   FakeExecutor executor;
//   ServerOptions options;
//   TempDir dir;
//   options.socket_dir = dir.path();
//   auto server = Server::Start(options, &executor);
//   // "echo hi" -> output "hi\n"; "sleep" -> blocks until cancelled.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "monitor/console/executor.h"
#include "tests/testing/still_waiting.h"

namespace annex::console::testing {

// Commands (request text):
//   "sleep"      waits until cancelled, however long (an INTERRUPT, the
//                client's disconnect or the server's Stop() cancels it),
//                then kInterrupted
//   "raise MSG"  kError with a traceback naming MSG
//   "exit N"     kError with exit_code N
//   "big N"      N bytes of output
//   anything else: output "<text>\n"; for kThreads/kStacks/kExecTarget/
//   kInterruptThread the kind name is prefixed.
// kInteractive follows Python's REPL: a buffer whose first line ends in ':'
// is incomplete until it ends with an empty line.
class FakeExecutor : public CommandExecutor {
 public:
  void OpenClient(uint64_t id) override {
    absl::MutexLock lock(&mu_);
    open_.insert(id);
    ++opened_;
  }
  void CloseClient(uint64_t id) override {
    absl::MutexLock lock(&mu_);
    open_.erase(id);
    ++closed_;
  }
  void Interrupt(uint64_t id) override {
    absl::MutexLock lock(&mu_);
    ++interrupts_[id];
  }
  Reply Execute(uint64_t id, const Request& req,
                const Cancellation& cancel) override {
    {
      absl::MutexLock lock(&mu_);
      ++executed_;
      kinds_.push_back(req.kind);
      if (++in_flight_[id] > 1) overlapped_ = true;
    }
    struct Done {
      FakeExecutor* self;
      uint64_t id;
      ~Done() {
        absl::MutexLock lock(&self->mu_);
        --self->in_flight_[id];
      }
    } done{this, id};
    Reply r;
    absl::string_view text = req.text;
    if (text == "sleep") {
      std::function<void()> on_sleep;
      {
        absl::MutexLock lock(&mu_);
        ++sleeping_;
        on_sleep = on_sleep_;
      }
      if (on_sleep) on_sleep();
      cancel.WaitFor(absl::InfiniteDuration());
      absl::MutexLock lock(&mu_);
      --sleeping_;
      ++cancelled_;
      r.status = ReplyStatus::kInterrupted;
      r.error = "KeyboardInterrupt\n";
      return r;
    }
    if (absl::ConsumePrefix(&text, "raise ")) {
      r.status = ReplyStatus::kError;
      r.error = absl::StrCat("Traceback (most recent call last):\n",
                             "RuntimeError: ", text, "\n");
      return r;
    }
    int n = 0;
    if (absl::ConsumePrefix(&text, "exit ") && absl::SimpleAtoi(text, &n)) {
      r.status = ReplyStatus::kError;
      r.exit_code = n;
      r.error = "SystemExit\n";
      return r;
    }
    if (absl::ConsumePrefix(&text, "big ") && absl::SimpleAtoi(text, &n)) {
      r.output.assign(static_cast<size_t>(n), 'x');
      return r;
    }
    if (req.kind == RequestKind::kInteractive) {
      std::vector<absl::string_view> lines = absl::StrSplit(req.text, '\n');
      if (!lines.empty() && absl::EndsWith(lines.front(), ":") &&
          !lines.back().empty()) {
        r.status = ReplyStatus::kIncomplete;
        return r;
      }
    }
    std::string prefix;
    switch (req.kind) {
      case RequestKind::kThreads:
        prefix = "threads:";
        break;
      case RequestKind::kStacks:
        prefix = "stacks:";
        break;
      case RequestKind::kExecTarget:
        prefix = "target:";
        break;
      case RequestKind::kInterruptThread:
        prefix = "interrupt-thread:";
        break;
      default:
        break;
    }
    r.output = absl::StrCat(prefix, req.text, "\n");
    return r;
  }

  // Called (on the client's worker thread, no lock held) each time a
  // "sleep" starts: how console_demo tells a test in another process that
  // the command runs. Set before the server starts.
  void OnSleep(std::function<void()> f) {
    absl::MutexLock lock(&mu_);
    on_sleep_ = std::move(f);
  }

  // Waits until `pred` holds, however long that takes. For effects that
  // happen on server threads. Where: any thread.
  void WaitUntil(bool (FakeExecutor::*pred)() const) {
    absl::MutexLock lock(&mu_);
    annex::testing::AwaitSaying(mu_, absl::Condition(this, pred),
                                [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                  return absl::StrCat(
                                      "the fake executor (sleeping ", sleeping_,
                                      ", opened ", opened_, ", closed ",
                                      closed_, ", cancelled ", cancelled_, ")");
                                });
  }
  bool SomeoneSleeps() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sleeping_ > 0;
  }
  bool AllClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return opened_ > 0 && opened_ == closed_;
  }
  bool OneCancelled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cancelled_ > 0;
  }

  // True if two commands of one session ever ran at the same time.
  bool overlapped() {
    absl::MutexLock l(&mu_);
    return overlapped_;
  }
  int opened() {
    absl::MutexLock l(&mu_);
    return opened_;
  }
  int closed() {
    absl::MutexLock l(&mu_);
    return closed_;
  }
  int executed() {
    absl::MutexLock l(&mu_);
    return executed_;
  }
  int cancelled() {
    absl::MutexLock l(&mu_);
    return cancelled_;
  }
  int interrupts(uint64_t id) {
    absl::MutexLock l(&mu_);
    return interrupts_[id];
  }
  std::vector<RequestKind> kinds() {
    absl::MutexLock l(&mu_);
    return kinds_;
  }

 private:
  mutable absl::Mutex mu_;
  std::set<uint64_t> open_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, int> interrupts_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestKind> kinds_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_sleep_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, int> in_flight_ ABSL_GUARDED_BY(mu_);
  bool overlapped_ ABSL_GUARDED_BY(mu_) = false;
  int opened_ ABSL_GUARDED_BY(mu_) = 0;
  int closed_ ABSL_GUARDED_BY(mu_) = 0;
  int executed_ ABSL_GUARDED_BY(mu_) = 0;
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
};

// A fresh 0700 directory under /tmp (Bazel's TEST_TMPDIR is too long for a
// 108-byte sun_path), removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/annex-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path_ = p != nullptr ? p : "";
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::string cmd = absl::StrCat("rm -rf '", path_, "'");
      (void)!::system(cmd.c_str());
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace annex::console::testing
