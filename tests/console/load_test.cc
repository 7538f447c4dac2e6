// Load: 8 clients x 1000 commands each against a fake executor. No reply is
// lost and every reply reaches the client that asked, in order.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/console/server_test_util.h"

namespace annex::console::testing {
namespace {

constexpr int kClients = 8;
constexpr int kCommands = 1000;

TEST(LoadTest, EightClientsThousandCommandsEachNoLostOrCrossedReplies) {
  ServerOptions o;
  o.max_clients = kClients;
  TestServer t(o);
  std::atomic<int> good{0};
  std::atomic<int> bad{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Client>> c =
          Client::ConnectToPath(t.server->socket_path(), t.Options());
      if (!c.ok()) {
        bad += kCommands;
        return;
      }
      for (int j = 0; j < kCommands; ++j) {
        std::string text = absl::StrCat("client-", i, "-cmd-", j);
        absl::StatusOr<ReplyMessage> r = (*c)->Call(RequestKind::kExec, text);
        if (r.ok() && r->status == ReplyStatus::kOk &&
            r->output == text + "\n") {
          ++good;
        } else {
          ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(good.load(), kClients * kCommands);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(t.executor.executed(), kClients * kCommands);
  EXPECT_FALSE(t.executor.overlapped());
  // Reported, not asserted: tests check behaviour, not speed.
  std::printf(
      "{\"case\": \"console_load\", \"clients\": %d, "
      "\"commands\": %d, \"seconds\": %.3f}\n",
      kClients, kClients * kCommands, absl::ToDoubleSeconds(took));
}

// The same load, pipelined: each client sends all requests before reading.
TEST(LoadTest, PipelinedClientsGetEveryReplyInOrder) {
  ServerOptions o;
  o.max_clients = kClients;
  o.max_queued_requests = kCommands;
  TestServer t(o);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Client>> c =
          Client::ConnectToPath(t.server->socket_path(), t.Options());
      if (!c.ok()) {
        ++bad;
        return;
      }
      std::string batch;
      for (int j = 0; j < kCommands; ++j) {
        batch += EncodeRequest(RequestMessage{static_cast<uint32_t>(j + 1),
                                              RequestKind::kExec,
                                              absl::StrCat("c", i, "-", j)});
      }
      if (!(*c)->SendBytes(batch).ok()) ++bad;
      for (int j = 0; j < kCommands; ++j) {
        absl::StatusOr<Frame> f = (*c)->ReadFrame(absl::InfiniteDuration());
        if (!f.ok()) {
          ++bad;
          return;
        }
        absl::StatusOr<ReplyMessage> r = DecodeReply(f->payload);
        if (!r.ok() || r->request_id != static_cast<uint32_t>(j + 1) ||
            r->output != absl::StrCat("c", i, "-", j, "\n")) {
          ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_FALSE(t.executor.overlapped());  // one at a time per session
}

}  // namespace
}  // namespace annex::console::testing
