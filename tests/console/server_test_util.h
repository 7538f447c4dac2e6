// Helpers for console server tests: start a server on a private directory
// with a FakeExecutor, connect clients, and speak raw bytes to it.
//
// No wait here has a deadline of its own, which a loaded machine could pass:
// each waits for its condition, and a server that never brings it hangs the
// test until Bazel's test timeout (the size in BUILD). A wait still waiting
// after a while says so on stderr once (tests/testing/still_waiting.h), and
// goes on waiting.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "monitor/console/client.h"
#include "monitor/console/internal/fd.h"
#include "monitor/console/server.h"
#include "tests/console/fake_executor.h"
#include "tests/testing/still_waiting.h"

namespace annex::console::testing {

// Owns directory, executor and server, in the order they must die.
struct TestServer {
  TempDir dir;
  FakeExecutor executor;
  std::unique_ptr<Server> server;

  explicit TestServer(ServerOptions options = ServerOptions()) {
    options.socket_dir = dir.path();
    if (options.program.empty()) options.program = "test-program";
    if (options.python_version.empty()) options.python_version = "3.11.test";
    absl::StatusOr<std::unique_ptr<Server>> s =
        Server::Start(options, &executor);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) server = std::move(*s);
  }
  ~TestServer() {
    if (server) server->Stop();
  }

  // Options whose connect (and handshake) waits as long as it takes.
  ClientOptions Options() const {
    ClientOptions o;
    o.socket_dir = dir.path();
    o.connect_timeout = absl::InfiniteDuration();
    return o;
  }
  std::unique_ptr<Client> Connect() {
    absl::StatusOr<std::unique_ptr<Client>> c =
        Client::ConnectToPath(server->socket_path(), Options());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Waits until the server reports `n` active sessions, however long that
  // takes. Where: any thread.
  void WaitForClients(int n) {
    annex::testing::StillWaiting still;
    while (server->ActiveClients() != n) {
      still.Check([&] {
        return absl::StrCat(n, " console session(s) (now ",
                            server->ActiveClients(), ")");
      });
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
};

// A connected Unix socket with no handshake done, for raw bytes.
inline internal::UniqueFd RawConnect(const std::string& path) {
  internal::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
  }
  return fd;
}

inline void SendRaw(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// Reads until EOF (or a read error: both set *eof), however long the peer
// takes, and returns everything received. Where: any thread.
inline std::string ReadUntilEof(int fd, bool* eof) {
  std::string out;
  *eof = false;
  annex::testing::StillWaiting still;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 100);
    if (ready <= 0) {
      still.Check([&] {
        return absl::StrCat("EOF on fd ", fd, " (", out.size(),
                            " bytes so far)");
      });
      continue;
    }
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *eof = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// Cuts the first frame out of `bytes` and decodes it as an ERROR.
inline absl::StatusOr<ErrorMessage> FirstError(const std::string& bytes) {
  Frame f;
  absl::StatusOr<size_t> used = ParseFrame(bytes, kAbsoluteMaxPayload, &f);
  if (!used.ok()) return used.status();
  if (*used == 0) return absl::NotFoundError("no complete frame");
  if (f.type != static_cast<uint8_t>(FrameType::kError)) {
    return absl::NotFoundError("first frame is not an ERROR");
  }
  return DecodeError(f.payload);
}

}  // namespace annex::console::testing
