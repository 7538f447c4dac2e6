// Console client: blocking connect, handshake, request/reply. See client.h.
#include "monitor/console/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "monitor/console/internal/runtime_dir.h"

namespace annex::console {
namespace {

using internal::ErrnoStatus;
using internal::UniqueFd;

int RemainingMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(ms, 1 << 30)));
}

absl::StatusOr<std::string> SocketDir(const ClientOptions& o) {
  if (!o.socket_dir.empty()) return o.socket_dir;
  return internal::DefaultRuntimeDir();
}

// Nonblocking connect with a deadline, then back to blocking mode.
absl::Status ConnectWithDeadline(int fd, const sockaddr* addr, socklen_t len,
                                 absl::Time deadline) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return ErrnoStatus("connect");
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n == 0) return absl::DeadlineExceededError("connect timed out");
    int err = 0;
    socklen_t err_len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) return ErrnoStatus("connect", err);
  }
  ::fcntl(fd, F_SETFL, flags);
  return absl::OkStatus();
}

}  // namespace

absl::Status ErrorToStatus(const ErrorMessage& error) {
  std::string msg = absl::StrCat("server: ", error.message);
  switch (static_cast<ErrorCode>(error.code)) {
    case ErrorCode::kPermissionDenied:
      return absl::PermissionDeniedError(msg);
    case ErrorCode::kTooManyClients:
    case ErrorCode::kOutputOverflow:
      return absl::ResourceExhaustedError(msg);
    case ErrorCode::kServerStopping:
      return absl::UnavailableError(msg);
    case ErrorCode::kIdleTimeout:
      return absl::DeadlineExceededError(msg);
    case ErrorCode::kUnsupportedVersion:
      return absl::FailedPreconditionError(msg);
    case ErrorCode::kMalformedFrame:
    case ErrorCode::kFrameTooLarge:
    case ErrorCode::kUnknownFrameType:
    case ErrorCode::kProtocolViolation:
      return absl::InvalidArgumentError(msg);
  }
  return absl::UnknownError(msg);
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectToPid(
    pid_t pid, const ClientOptions& options) {
  absl::StatusOr<std::string> dir = SocketDir(options);
  if (!dir.ok()) return dir.status();
  if (options.tcp_port != 0) {
    std::string token = options.token;
    if (token.empty()) {
      absl::StatusOr<std::string> text =
          internal::ReadSmallFile(internal::TokenPath(*dir, pid), 1024);
      if (!text.ok()) return text.status();
      token = std::string(absl::StripAsciiWhitespace(*text));
    }
    return ConnectTcp(options.tcp_port, token, options);
  }
  // Refuse a directory someone else could have planted sockets in.
  if (absl::Status s = internal::VerifyPrivateDir(*dir); !s.ok()) return s;
  return ConnectToPath(internal::SocketPath(*dir, pid), options);
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectToPath(
    const std::string& socket_path, const ClientOptions& options) {
  absl::Time deadline = absl::Now() + options.connect_timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket");
  if (absl::Status s = ConnectWithDeadline(
          fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr), deadline);
      !s.ok()) {
    return s;
  }
  std::unique_ptr<Client> c(new Client(std::move(fd)));
  if (absl::Status s = c->Handshake("", options); !s.ok()) return s;
  return c;
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectTcp(
    int port, const std::string& token, const ClientOptions& options) {
  absl::Time deadline = absl::Now() + options.connect_timeout;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket");
  if (absl::Status s = ConnectWithDeadline(
          fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr), deadline);
      !s.ok()) {
    return s;
  }
  std::unique_ptr<Client> c(new Client(std::move(fd)));
  if (absl::Status s = c->Handshake(token, options); !s.ok()) return s;
  return c;
}

absl::Status Client::Handshake(const std::string& token,
                               const ClientOptions& o) {
  HelloMessage hello;
  hello.token = token;
  hello.client_name = o.client_name;
  absl::Status sent = SendBytes(EncodeHello(hello));
  // A server that refuses us (too many clients, wrong uid) writes an ERROR
  // and closes at once, possibly before our HELLO arrives: the send then
  // fails, but the ERROR is still waiting to be read and says why.
  absl::StatusOr<Frame> frame =
      ReadFrame(sent.ok() ? o.connect_timeout : absl::Seconds(1));
  if (!sent.ok() && !frame.ok()) return sent;
  if (!frame.ok()) return frame.status();
  if (frame->type == static_cast<uint8_t>(FrameType::kError)) {
    absl::StatusOr<ErrorMessage> err = DecodeError(frame->payload);
    if (!err.ok()) return err.status();
    return ErrorToStatus(*err);
  }
  if (frame->type != static_cast<uint8_t>(FrameType::kWelcome)) {
    return absl::InvalidArgumentError("expected WELCOME from server");
  }
  absl::StatusOr<WelcomeMessage> w = DecodeWelcome(frame->payload);
  if (!w.ok()) return w.status();
  welcome_ = *w;
  return absl::OkStatus();
}

absl::Status Client::SendBytes(const std::string& bytes) {
  if (!fd_.valid()) return absl::UnavailableError("connection closed");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done,
                       MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("send");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<Frame> Client::ReadFrame(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    Frame frame;
    // Replies are cut to the server's limit; accept up to the protocol's
    // absolute bound so a server configured larger still works.
    absl::StatusOr<size_t> used = ParseFrame(in_, kAbsoluteMaxPayload, &frame);
    if (!used.ok()) return used.status();
    if (*used > 0) {
      in_.erase(0, *used);
      return frame;
    }
    if (!fd_.valid()) return absl::UnavailableError("connection closed");
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return absl::DeadlineExceededError("no frame in time");
    char buf[64 * 1024];
    ssize_t got = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      fd_.Reset();
      return absl::UnavailableError("connection closed by server");
    }
    in_.append(buf, static_cast<size_t>(got));
  }
}

absl::StatusOr<ReplyMessage> Client::Call(RequestKind kind,
                                          const std::string& text,
                                          int interrupt_fd,
                                          absl::Duration timeout) {
  RequestMessage req;
  req.request_id = next_request_id_++;
  if (next_request_id_ == 0) next_request_id_ = 1;  // 0 means "any"
  req.kind = kind;
  req.text = text;
  std::string frame = EncodeRequest(req);
  // The server would hang up on an oversized frame; refusing here keeps
  // the connection.
  if (welcome_.max_payload != 0 &&
      frame.size() - kFrameHeaderSize > welcome_.max_payload) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request of ", frame.size() - kFrameHeaderSize,
        " bytes exceeds the server's limit of ", welcome_.max_payload));
  }
  if (absl::Status s = SendBytes(frame); !s.ok()) return s;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // Wait for either the socket or the interrupt pipe.
    pollfd p[2] = {{fd_.get(), POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
    Frame buffered;
    absl::StatusOr<size_t> have =
        ParseFrame(in_, kAbsoluteMaxPayload, &buffered);
    if (have.ok() && *have == 0) {
      int n = ::poll(p, interrupt_fd >= 0 ? 2 : 1, RemainingMs(deadline));
      if (n < 0 && errno != EINTR) return ErrnoStatus("poll");
      if (n == 0) return absl::DeadlineExceededError("no reply in time");
      if (interrupt_fd >= 0 && (p[1].revents & POLLIN)) {
        char drain[64];
        (void)!::read(interrupt_fd, drain, sizeof(drain));
        InterruptMessage intr;
        intr.request_id = req.request_id;
        if (absl::Status s = SendBytes(EncodeInterrupt(intr)); !s.ok()) {
          return s;
        }
      }
      if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    }
    absl::StatusOr<Frame> frame = ReadFrame(absl::ZeroDuration());
    if (absl::IsDeadlineExceeded(frame.status())) continue;  // partial frame
    if (!frame.ok()) return frame.status();
    if (frame->type == static_cast<uint8_t>(FrameType::kError)) {
      absl::StatusOr<ErrorMessage> err = DecodeError(frame->payload);
      if (!err.ok()) return err.status();
      if (err->fatal) fd_.Reset();
      return ErrorToStatus(*err);
    }
    if (frame->type != static_cast<uint8_t>(FrameType::kReply)) {
      return absl::InvalidArgumentError("unexpected frame from server");
    }
    absl::StatusOr<ReplyMessage> reply = DecodeReply(frame->payload);
    if (!reply.ok()) return reply.status();
    // A reply to an older request (e.g. one we gave up waiting for) is
    // skipped; ours is the only one we wait for.
    if (reply->request_id != req.request_id) continue;
    return reply;
  }
}

}  // namespace annex::console
