// Helpers for console server tests: start a server on a private directory
// with a FakeExecutor, connect clients, and speak raw bytes to it.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "monitor/console/client.h"
#include "monitor/console/internal/fd.h"
#include "monitor/console/server.h"
#include "tests/console/fake_executor.h"

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

  ClientOptions Options() const {
    ClientOptions o;
    o.socket_dir = dir.path();
    return o;
  }
  std::unique_ptr<Client> Connect() {
    absl::StatusOr<std::unique_ptr<Client>> c =
        Client::ConnectToPath(server->socket_path(), Options());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Waits until the server reports `n` active sessions (up to 10 s).
  bool WaitForClients(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (server->ActiveClients() == n) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
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

// Reads until EOF (or 10 s) and returns everything received.
inline std::string ReadUntilEof(int fd, bool* eof) {
  std::string out;
  *eof = false;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *eof = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
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
