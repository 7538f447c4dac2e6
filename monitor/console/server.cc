// Console server: one poll(2) I/O thread, one worker thread per client.
// See server.h for the contract and docs/console-protocol.md for the wire.
//
// Ownership: the I/O thread owns every Connection and is the only thread that
// reads or writes sockets. A ClientState is shared (shared_ptr) between its
// Connection and its worker; its mutex guards the request queue, the
// in-flight command and the output buffer. A client that is gone
// but whose command still runs is "retired": the I/O thread joins its worker
// once the worker says it is done, so no thread is ever detached.
#include "monitor/console/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "monitor/console/internal/fd.h"
#include "monitor/console/internal/runtime_dir.h"

namespace annex::console {
namespace {

using internal::ErrnoStatus;
using internal::UniqueFd;

// Bytes read from one connection per poll round, so a client streaming
// data cannot starve the others.
constexpr size_t kReadBudgetPerRound = size_t{256} * 1024;

constexpr char kHelpText[] =
    "Annex console commands:\n"
    "  <python code>        run in the annex interpreter (your own namespace)\n"
    "  .threads             list the target's threads\n"
    "  .stacks              the target's Python stacks\n"
    "  .interrupt THREAD    raise KeyboardInterrupt in a target thread [*]\n"
    "  .exec-target CODE    run CODE in the target interpreter [*]\n"
    "  .help                this text\n"
    "  Ctrl-C               interrupt the running command\n"
    "[*] needs the server's allow_exec_target permission";

bool NeedsTargetPermission(RequestKind kind) {
  return kind == RequestKind::kExecTarget ||
         kind == RequestKind::kInterruptThread;
}

std::string DefaultProgramName() {
  absl::StatusOr<std::string> cmdline =
      internal::ReadSmallFile("/proc/self/cmdline", size_t{64} * 1024);
  if (cmdline.ok() && !cmdline->empty()) {
    // argv is NUL-separated; keep the words, readable.
    std::string out;
    for (absl::string_view word :
         absl::StrSplit(*cmdline, '\0', absl::SkipEmpty())) {
      if (!out.empty()) out.push_back(' ');
      out.append(word.data(), word.size());
      if (out.size() > 200) break;
    }
    return out;
  }
  return "?";
}

// Best-effort write of a short frame to a socket we are about to close.
void SendAndForget(int fd, const std::string& bytes) {
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

std::string ErrorFrame(ErrorCode code, bool fatal, absl::string_view text) {
  ErrorMessage m;
  m.code = static_cast<uint16_t>(code);
  m.fatal = fatal;
  m.message = static_cast<std::string>(text);
  return EncodeError(m);
}

// ---------------------------------------------------------------------------

struct ClientState {
  uint64_t id = 0;
  absl::Mutex mu;  // the worker waits on a Condition over queue and closing
  std::deque<RequestMessage> queue ABSL_GUARDED_BY(mu);
  bool closing ABSL_GUARDED_BY(mu) = false;
  bool running ABSL_GUARDED_BY(mu) = false;
  uint32_t running_id ABSL_GUARDED_BY(mu) = 0;
  std::shared_ptr<Cancellation> cancel ABSL_GUARDED_BY(mu);
  // Encoded frames for the client; bytes before out_sent are already sent.
  std::string out ABSL_GUARDED_BY(mu);
  size_t out_sent ABSL_GUARDED_BY(mu) = 0;
  bool overflow ABSL_GUARDED_BY(mu) = false;
  absl::Time last_activity ABSL_GUARDED_BY(mu);

  std::thread worker;  // started at HELLO; joined by the I/O thread
  std::atomic<bool> worker_done{false};

  size_t PendingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return out.size() - out_sent;
  }
};

struct Connection {
  UniqueFd fd;
  bool tcp = false;
  // Who is at the other end, for the per-peer limit of connections still in
  // their handshake: "uid N" (Unix socket) or the TCP source address.
  std::string peer;
  bool welcomed = false;
  bool dead = false;  // close at the end of this round
  std::string in;
  absl::Time handshake_deadline;
  std::shared_ptr<ClientState> client = std::make_shared<ClientState>();
};

}  // namespace

class Server::Impl {
 public:
  Impl(const ServerOptions& options, CommandExecutor* executor)
      : options_(options), executor_(executor) {}
  ~Impl() { Stop(); }

  // Caller's thread (Server::Start / Stop / the destructor).
  absl::Status Init();
  void Stop();
  // Any thread.
  int ActiveClients() const { return active_.load(); }

  // Written by Init() before any thread starts, read-only after.
  ServerOptions options_;
  CommandExecutor* executor_;
  std::string dir_, socket_path_, info_path_, token_path_, token_;
  ino_t socket_ino_ = 0;
  // Which files are ours to remove: a Start() that fails because another
  // live server owns the endpoint must not delete that server's files.
  bool wrote_info_ = false;
  bool wrote_token_ = false;
  int tcp_port_ = 0;

 private:
  // Init() only.
  absl::Status BindUnix();
  absl::Status BindTcp();
  // I/O thread only: the loop and everything it calls.
  void Loop();
  void AcceptAll(int listen_fd, bool tcp);
  void ReadFrom(Connection& c);
  void HandleFrame(Connection& c, const Frame& frame);
  void HandleHello(Connection& c, const Frame& frame);
  void Fatal(Connection& c, ErrorCode code, absl::string_view text);
  void AppendOut(ClientState& s, const std::string& bytes);
  void Flush(Connection& c);
  void CloseConnection(Connection& c);
  void Reap(bool wait);
  // Connections still in their handshake on this kind of listener, in all
  // and from `peer`.
  void CountUnauthenticated(bool tcp, const std::string& peer, int* all,
                            int* from_peer) const;
  // Clients past their HELLO, including retired ones still finishing.
  int AuthenticatedClients() const;
  // A client's worker thread; no socket I/O, talks to the I/O thread
  // through the client's mutex and Wake().
  void WorkerMain(const std::shared_ptr<ClientState>& s);
  Reply Run(uint64_t client_id, const RequestMessage& req,
            const Cancellation& cancel);
  void AppendReply(ClientState& s, uint32_t request_id, Reply reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Any thread.
  void Wake();
  // Init() failures and Stop().
  void RemoveFiles();

  UniqueFd unix_fd_, tcp_fd_, wake_fd_;
  std::thread io_thread_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::atomic<int> active_{0};
  uint64_t next_client_id_ = 1;
  absl::Time listen_pause_until_ = absl::InfinitePast();
  // I/O thread only.
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<std::shared_ptr<ClientState>> retired_;
};

absl::Status Server::Impl::Init() {
  if (executor_ == nullptr) {
    return absl::InvalidArgumentError("executor is null");
  }
  if (options_.max_clients < 1) {
    return absl::InvalidArgumentError("max_clients must be at least 1");
  }
  if (options_.max_unauthenticated < 1 ||
      options_.max_unauthenticated_per_peer < 1) {
    return absl::InvalidArgumentError(
        "max_unauthenticated and max_unauthenticated_per_peer must be at "
        "least 1");
  }
  if (options_.max_payload < 256 ||
      options_.max_payload > kAbsoluteMaxPayload) {
    return absl::InvalidArgumentError("max_payload out of range");
  }
  if (options_.max_output_buffer < options_.max_payload + kReplyOverhead) {
    // One full-size reply must always fit, or every big reply would drop.
    options_.max_output_buffer = options_.max_payload + kReplyOverhead;
  }
  if (options_.endpoint_id == 0) options_.endpoint_id = ::getpid();
  if (options_.program.empty()) options_.program = DefaultProgramName();

  if (options_.socket_dir.empty()) {
    absl::StatusOr<std::string> dir = internal::DefaultRuntimeDir();
    if (!dir.ok()) return dir.status();
    dir_ = *dir;
  } else {
    dir_ = options_.socket_dir;
  }
  if (absl::Status s = internal::EnsurePrivateDir(dir_); !s.ok()) return s;
  internal::CleanStaleEndpoints(dir_, options_.endpoint_id);

  socket_path_ = internal::SocketPath(dir_, options_.endpoint_id);
  info_path_ = internal::InfoPath(dir_, options_.endpoint_id);
  if (absl::Status s = BindUnix(); !s.ok()) return s;
  if (options_.enable_tcp) {
    if (absl::Status s = BindTcp(); !s.ok()) {
      RemoveFiles();
      return s;
    }
  }

  internal::ProcessInfo info;
  info.pid = options_.endpoint_id;
  info.program = options_.program;
  info.python_version = options_.python_version;
  info.start_time = absl::ToUnixSeconds(absl::Now());
  info.tcp_port = tcp_port_;
  if (absl::Status s =
          internal::WriteFileAtomically(info_path_, internal::FormatInfo(info));
      !s.ok()) {
    RemoveFiles();
    return s;
  }
  wrote_info_ = true;

  wake_fd_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_.valid()) {
    absl::Status s = ErrnoStatus("eventfd");
    RemoveFiles();
    return s;
  }
  try {
    io_thread_ = std::thread([this] { Loop(); });
  } catch (const std::system_error& e) {
    RemoveFiles();
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the console I/O thread: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status Server::Impl::BindUnix() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path too long: ", socket_path_));
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());

  struct stat st;
  if (::lstat(socket_path_.c_str(), &st) == 0) {
    // Our own directory, our own pid: either an earlier server of this
    // process that is still listening, or a leftover of a process that had
    // our pid before.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (S_ISSOCK(st.st_mode) && probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr),
                  sizeof(addr)) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("a console server already listens on ", socket_path_));
    }
    ::unlink(socket_path_.c_str());
  }

  unix_fd_.Reset(
      ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!unix_fd_.valid()) return ErrnoStatus("socket");
  if (::bind(unix_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0) {
    return ErrnoStatus("bind " + socket_path_);
  }
  // umask is process-wide, so we do not touch it; between bind and chmod the
  // socket may be more open than 0600, but only inside our 0700 directory.
  if (::chmod(socket_path_.c_str(), 0600) != 0 ||
      ::lstat(socket_path_.c_str(), &st) != 0) {
    absl::Status s = ErrnoStatus("chmod " + socket_path_);
    ::unlink(socket_path_.c_str());
    return s;
  }
  socket_ino_ = st.st_ino;
  if (::listen(unix_fd_.get(), 16) != 0) {
    absl::Status s = ErrnoStatus("listen");
    RemoveFiles();
    return s;
  }
  return absl::OkStatus();
}

absl::Status Server::Impl::BindTcp() {
  if (options_.tcp_port < 0 || options_.tcp_port > 65535) {
    return absl::InvalidArgumentError("tcp_port out of range");
  }
  absl::StatusOr<std::string> token = internal::RandomToken();
  if (!token.ok()) return token.status();
  token_ = *token;

  tcp_fd_.Reset(
      ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!tcp_fd_.valid()) return ErrnoStatus("socket");
  int one = 1;
  ::setsockopt(tcp_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options_.tcp_port));
  // Loopback only, by construction: there is no option for another address.
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(tcp_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return ErrnoStatus("bind 127.0.0.1");
  }
  if (::listen(tcp_fd_.get(), 16) != 0) return ErrnoStatus("listen tcp");
  socklen_t len = sizeof(addr);
  if (::getsockname(tcp_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) !=
      0) {
    return ErrnoStatus("getsockname");
  }
  tcp_port_ = ntohs(addr.sin_port);
  std::string path = internal::TokenPath(dir_, options_.endpoint_id);
  if (absl::Status s = internal::WriteFileAtomically(path, token_ + "\n");
      !s.ok()) {
    return s;
  }
  token_path_ = path;
  wrote_token_ = true;
  return absl::OkStatus();
}

void Server::Impl::RemoveFiles() {
  struct stat st;
  // Only unlink the socket we created: never a newer one at the same path.
  if (!socket_path_.empty() && ::lstat(socket_path_.c_str(), &st) == 0 &&
      st.st_ino == socket_ino_) {
    ::unlink(socket_path_.c_str());
  }
  if (wrote_info_) ::unlink(info_path_.c_str());
  if (wrote_token_) ::unlink(token_path_.c_str());
}

void Server::Impl::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void Server::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (io_thread_.joinable()) {
    stopping_.store(true);
    Wake();
    io_thread_.join();
  }
  unix_fd_.Reset();
  tcp_fd_.Reset();
  RemoveFiles();
}

// ---- I/O thread ------------------------------------------------------------

void Server::Impl::Loop() {
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    absl::Time now = absl::Now();
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    bool listening = now >= listen_pause_until_;
    fds.push_back({listening ? unix_fd_.get() : -1, POLLIN, 0});
    fds.push_back(
        {listening && tcp_fd_.valid() ? tcp_fd_.get() : -1, POLLIN, 0});
    absl::Time next_deadline = now + absl::Seconds(1);
    for (auto& c : conns_) {
      short events = POLLIN;
      ClientState& s = *c->client;
      absl::MutexLock lock(&s.mu);
      if (s.PendingLocked() > 0) events |= POLLOUT;
      // A client with work in flight has no idle deadline; counting its
      // (past) deadline would turn poll() into a busy loop.
      if (!c->welcomed) {
        next_deadline = std::min(next_deadline, c->handshake_deadline);
      } else if (!s.running && s.queue.empty()) {
        next_deadline =
            std::min(next_deadline, s.last_activity + options_.idle_timeout);
      }
      fds.push_back({c->fd.get(), events, 0});
    }
    if (!listening)
      next_deadline = std::min(next_deadline, listen_pause_until_);
    int timeout_ms = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(next_deadline - now) + 1));
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;  // cannot happen with valid fds
    if (stopping_.load()) break;

    if (fds[0].revents & POLLIN) {
      uint64_t v;
      (void)!::read(wake_fd_.get(), &v, sizeof(v));
    }
    // Connections first (their indexes match fds), then new ones.
    size_t count = conns_.size();
    for (size_t i = 0; i < count; ++i) {
      Connection& c = *conns_[i];
      short rev = fds[3 + i].revents;
      if (rev & (POLLIN | POLLHUP | POLLERR)) ReadFrom(c);
    }
    if (fds[1].revents & POLLIN) AcceptAll(unix_fd_.get(), false);
    if (fds[2].revents & POLLIN) AcceptAll(tcp_fd_.get(), true);

    now = absl::Now();
    for (auto& c : conns_) {
      if (c->dead) continue;
      Flush(*c);
      if (c->dead) continue;
      ClientState& s = *c->client;
      bool overflow, idle;
      {
        absl::MutexLock lock(&s.mu);
        overflow = s.overflow;
        idle = c->welcomed && !s.running && s.queue.empty() &&
               now >= s.last_activity + options_.idle_timeout;
      }
      if (overflow) {
        Fatal(*c, ErrorCode::kOutputOverflow,
              "client does not read its replies; dropped");
      } else if (!c->welcomed && now >= c->handshake_deadline) {
        Fatal(*c, ErrorCode::kIdleTimeout, "no HELLO in time");
      } else if (idle) {
        Fatal(*c, ErrorCode::kIdleTimeout, "idle timeout");
      }
    }
    for (auto& c : conns_) {
      if (c->dead) CloseConnection(*c);
    }
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                [](const std::unique_ptr<Connection>& c) {
                                  return !c->fd.valid();
                                }),
                 conns_.end());
    Reap(/*wait=*/false);
  }

  // Stopping: tell every client, cancel everything, join every worker.
  for (auto& c : conns_) {
    SendAndForget(c->fd.get(), ErrorFrame(ErrorCode::kServerStopping, true,
                                          "server stopping"));
    CloseConnection(*c);
  }
  conns_.clear();
  Reap(/*wait=*/true);
}

void Server::Impl::CountUnauthenticated(bool tcp, const std::string& peer,
                                        int* all, int* from_peer) const {
  *all = 0;
  *from_peer = 0;
  for (const auto& c : conns_) {
    if (c->welcomed || c->dead || c->tcp != tcp) continue;
    ++*all;
    if (c->peer == peer) ++*from_peer;
  }
}

int Server::Impl::AuthenticatedClients() const {
  int n = static_cast<int>(retired_.size());
  for (const auto& c : conns_) {
    if (c->welcomed && !c->dead) ++n;
  }
  return n;
}

void Server::Impl::AcceptAll(int listen_fd, bool tcp) {
  while (true) {
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    UniqueFd fd(::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr),
                          &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        // The pending connection stays in the backlog and would wake poll
        // at once: back off instead of spinning.
        listen_pause_until_ = absl::Now() + absl::Milliseconds(100);
      }
      return;  // EAGAIN, or the client already left (ECONNABORTED)
    }
    std::string peer;
    if (!tcp) {
      ucred cred{};
      socklen_t len = sizeof(cred);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
          cred.uid != ::geteuid()) {
        SendAndForget(fd.get(), ErrorFrame(ErrorCode::kPermissionDenied, true,
                                           "peer uid is not the server's uid"));
        continue;
      }
      peer = absl::StrCat("uid ", cred.uid);
    } else {
      int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      char text[INET_ADDRSTRLEN] = "?";
      if (addr.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr,
                    text, sizeof(text));
      }
      peer = text;
    }
    // Only the handshake pools are checked here: max_clients applies at
    // HELLO, so connections that never authenticate cannot take the slots
    // of those that do (nor those of the other listener's peers).
    int all = 0, from_peer = 0;
    CountUnauthenticated(tcp, peer, &all, &from_peer);
    // Every Unix peer has our uid (checked above): its per-uid limit is the
    // pool itself. On TCP, one source address gets a share of the pool.
    const int per_peer = tcp ? options_.max_unauthenticated_per_peer
                             : options_.max_unauthenticated;
    if (all >= options_.max_unauthenticated || from_peer >= per_peer) {
      SendAndForget(
          fd.get(),
          ErrorFrame(ErrorCode::kTooManyClients, true,
                     from_peer >= per_peer
                         ? "too many connections from this peer waiting "
                           "for their handshake"
                         : "too many connections waiting for their "
                           "handshake"));
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = std::move(fd);
    c->tcp = tcp;
    c->peer = std::move(peer);
    c->handshake_deadline = absl::Now() + options_.handshake_timeout;
    conns_.push_back(std::move(c));
    active_.store(static_cast<int>(conns_.size() + retired_.size()));
  }
}

void Server::Impl::ReadFrom(Connection& c) {
  if (c.dead) return;
  char buf[64 * 1024];
  size_t budget = kReadBudgetPerRound;
  while (budget > 0 && !c.dead) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF or reset: the client is gone
      c.dead = true;
      return;
    }
    budget -= std::min(budget, static_cast<size_t>(n));
    c.in.append(buf, static_cast<size_t>(n));
    {
      absl::MutexLock lock(&c.client->mu);
      c.client->last_activity = absl::Now();
    }
    // c.in never holds more than one partial frame: ParseFrame rejects an
    // oversized length from the header, before its payload is buffered.
    size_t used_total = 0;
    while (!c.dead) {
      Frame frame;
      absl::StatusOr<size_t> used =
          ParseFrame(absl::string_view(c.in).substr(used_total),
                     options_.max_payload, &frame);
      if (!used.ok()) {
        Fatal(c,
              absl::IsResourceExhausted(used.status())
                  ? ErrorCode::kFrameTooLarge
                  : ErrorCode::kMalformedFrame,
              used.status().message());
        return;
      }
      if (*used == 0) break;
      used_total += *used;
      HandleFrame(c, frame);
    }
    c.in.erase(0, used_total);
  }
}

void Server::Impl::HandleFrame(Connection& c, const Frame& frame) {
  if (!c.welcomed) {
    HandleHello(c, frame);
    return;
  }
  ClientState& s = *c.client;
  switch (frame.type) {
    case static_cast<uint8_t>(FrameType::kRequest): {
      absl::StatusOr<RequestMessage> req = DecodeRequest(frame.payload);
      if (!req.ok()) {
        AppendOut(s, ErrorFrame(ErrorCode::kMalformedFrame, false,
                                req.status().message()));
        return;
      }
      absl::MutexLock lock(&s.mu);
      if (s.queue.size() >= options_.max_queued_requests) {
        Reply refused;
        refused.status = ReplyStatus::kRefused;
        refused.error = "too many queued requests";
        AppendReply(s, req->request_id, std::move(refused));
        return;
      }
      s.queue.push_back(std::move(*req));  // the unlock wakes the worker
      return;
    }
    case static_cast<uint8_t>(FrameType::kInterrupt): {
      absl::StatusOr<InterruptMessage> intr = DecodeInterrupt(frame.payload);
      if (!intr.ok()) {
        AppendOut(s, ErrorFrame(ErrorCode::kMalformedFrame, false,
                                intr.status().message()));
        return;
      }
      absl::MutexLock lock(&s.mu);
      if (s.running &&
          (intr->request_id == 0 || intr->request_id == s.running_id)) {
        s.cancel->Cancel();
        // Under s.mu, so the command cannot finish in between and a stale
        // wake-up reach the next command; Interrupt() must not block.
        executor_->Interrupt(s.id);
        return;
      }
      // A queued request is dropped before it starts.
      for (auto it = s.queue.begin(); it != s.queue.end(); ++it) {
        if (intr->request_id != 0 && it->request_id == intr->request_id) {
          uint32_t id = it->request_id;
          s.queue.erase(it);
          Reply r;
          r.status = ReplyStatus::kInterrupted;
          r.error = "KeyboardInterrupt (before it started)";
          AppendReply(s, id, std::move(r));
          return;
        }
      }
      return;  // nothing to interrupt: harmless (Ctrl-C raced the reply)
    }
    case static_cast<uint8_t>(FrameType::kHello):
      AppendOut(s, ErrorFrame(ErrorCode::kProtocolViolation, false,
                              "HELLO after handshake"));
      return;
    default:
      if (IsKnownFrameType(frame.type)) {
        AppendOut(s, ErrorFrame(ErrorCode::kProtocolViolation, false,
                                absl::StrCat("frame type ", frame.type,
                                             " is not sent by clients")));
      } else {
        AppendOut(s,
                  ErrorFrame(ErrorCode::kUnknownFrameType, false,
                             absl::StrCat("unknown frame type ", frame.type)));
      }
      return;
  }
}

void Server::Impl::HandleHello(Connection& c, const Frame& frame) {
  if (frame.type != static_cast<uint8_t>(FrameType::kHello)) {
    Fatal(c, ErrorCode::kProtocolViolation, "expected HELLO first");
    return;
  }
  absl::StatusOr<HelloMessage> hello = DecodeHello(frame.payload);
  if (!hello.ok()) {
    Fatal(c, ErrorCode::kMalformedFrame, hello.status().message());
    return;
  }
  if (hello->version != kProtocolVersion) {
    Fatal(c, ErrorCode::kUnsupportedVersion,
          absl::StrCat("server speaks version ", kProtocolVersion, ", client ",
                       hello->version));
    return;
  }
  if (c.tcp && !internal::ConstantTimeEquals(hello->token, token_)) {
    Fatal(c, ErrorCode::kPermissionDenied, "wrong token");
    return;
  }
  if (AuthenticatedClients() >= options_.max_clients) {
    Fatal(c, ErrorCode::kTooManyClients, "too many clients");
    return;
  }
  c.welcomed = true;
  ClientState& s = *c.client;
  s.id = next_client_id_++;
  {
    absl::MutexLock lock(&s.mu);
    s.last_activity = absl::Now();
  }
  WelcomeMessage w;
  w.client_id = s.id;
  w.capabilities = options_.allow_exec_target ? kCapExecTarget : 0;
  w.max_payload = static_cast<uint32_t>(options_.max_payload);
  w.program = options_.program;
  w.python_version = options_.python_version;
  // Thread creation is the one place the standard library reports failure
  // by exception; it must not escape into the host.
  try {
    s.worker = std::thread(&Impl::WorkerMain, this, c.client);
  } catch (const std::system_error& e) {
    Fatal(c, ErrorCode::kTooManyClients,
          absl::StrCat("cannot start a client thread: ", e.what()));
    return;
  }
  AppendOut(s, EncodeWelcome(w));
}

void Server::Impl::Fatal(Connection& c, ErrorCode code,
                         absl::string_view text) {
  {
    // Past the output limit on purpose: it is the last frame, and small.
    absl::MutexLock lock(&c.client->mu);
    c.client->out.append(ErrorFrame(code, true, text));
  }
  Flush(c);  // one nonblocking try: a client that does not read loses it
  c.dead = true;
}

void Server::Impl::AppendOut(ClientState& s, const std::string& bytes) {
  absl::MutexLock lock(&s.mu);
  // Error frames count against the limit too: a client that streams
  // garbage without reading must not make us buffer an answer to each.
  if (s.PendingLocked() + bytes.size() > options_.max_output_buffer) {
    s.overflow = true;
    return;
  }
  s.out.append(bytes);
}

void Server::Impl::Flush(Connection& c) {
  ClientState& s = *c.client;
  absl::MutexLock lock(&s.mu);
  while (s.PendingLocked() > 0) {
    ssize_t n = ::send(c.fd.get(), s.out.data() + s.out_sent, s.PendingLocked(),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      c.dead = true;  // EPIPE/ECONNRESET: the client left
      break;
    }
    s.out_sent += static_cast<size_t>(n);
  }
  if (s.out_sent == s.out.size()) {
    s.out.clear();
    s.out_sent = 0;
  } else if (s.out_sent > (size_t{1} << 20)) {
    s.out.erase(0, s.out_sent);
    s.out_sent = 0;
  }
}

void Server::Impl::CloseConnection(Connection& c) {
  c.fd.Reset();
  std::shared_ptr<ClientState> s = c.client;
  {
    absl::MutexLock lock(&s->mu);
    s->closing = true;
    s->queue.clear();
    if (s->running) {
      s->cancel->Cancel();
      executor_->Interrupt(s->id);
    }
  }
  if (s->worker.joinable()) retired_.push_back(std::move(s));
}

void Server::Impl::Reap(bool wait) {
  for (auto& s : retired_) {
    if (wait || s->worker_done.load()) {
      s->worker.join();
      s.reset();
    }
  }
  retired_.erase(std::remove(retired_.begin(), retired_.end(), nullptr),
                 retired_.end());
  active_.store(static_cast<int>(conns_.size() + retired_.size()));
}

// ---- Worker threads
// ----------------------------------------------------------

void Server::Impl::WorkerMain(const std::shared_ptr<ClientState>& s) {
  executor_->OpenClient(s->id);
  while (true) {
    RequestMessage req;
    std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();
    {
      absl::MutexLock lock(&s->mu);
      auto has_news = [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
        return s->closing || !s->queue.empty();
      };
      s->mu.Await(absl::Condition(&has_news));
      if (s->closing) break;
      req = std::move(s->queue.front());
      s->queue.pop_front();
      s->running = true;
      s->running_id = req.request_id;
      s->cancel = cancel;
    }
    Reply reply = Run(s->id, req, *cancel);
    {
      absl::MutexLock lock(&s->mu);
      s->running = false;
      s->cancel.reset();
      s->last_activity = absl::Now();
      if (!s->closing) AppendReply(*s, req.request_id, std::move(reply));
    }
    Wake();
  }
  executor_->CloseClient(s->id);
  s->worker_done.store(true);
  Wake();
}

Reply Server::Impl::Run(uint64_t client_id, const RequestMessage& req,
                        const Cancellation& cancel) {
  Reply reply;
  if (req.kind == RequestKind::kHelp) {
    reply.output = kHelpText;
    reply.output += options_.allow_exec_target
                        ? " (granted)\n"
                        : " (not granted on this server)\n";
    return reply;
  }
  if (NeedsTargetPermission(req.kind) && !options_.allow_exec_target) {
    reply.status = ReplyStatus::kRefused;
    reply.error = absl::StrCat(
        req.kind == RequestKind::kInterruptThread
            ? "raising an exception in a target thread"
            : "running code in the target",
        " is not permitted by this server (allow_exec_target is off; "
        "`annex run --allow-exec-target` grants it)\n");
    return reply;
  }
  Request r;
  r.kind = req.kind;
  r.text = req.text;
  return executor_->Execute(client_id, r, cancel);
}

void Server::Impl::AppendReply(ClientState& s, uint32_t request_id,
                               Reply reply) {
  ReplyMessage m;
  m.request_id = request_id;
  m.status = reply.status;
  m.exit_code = reply.exit_code;
  m.output = std::move(reply.output);
  m.error = std::move(reply.error);
  TruncateReplyToFit(options_.max_payload, &m);
  std::string frame = EncodeReply(m);
  if (s.PendingLocked() + frame.size() > options_.max_output_buffer) {
    // Dropping the client beats buffering without bound for a reader that
    // never reads; the I/O thread closes it.
    s.overflow = true;
    return;
  }
  s.out.append(frame);
}

// ---- Server ----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, CommandExecutor* executor) {
  auto impl = std::make_unique<Impl>(options, executor);
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }
void Server::Stop() { impl_->Stop(); }
const std::string& Server::socket_path() const { return impl_->socket_path_; }
const std::string& Server::info_path() const { return impl_->info_path_; }
const std::string& Server::token_path() const { return impl_->token_path_; }
int Server::tcp_port() const { return impl_->tcp_port_; }
int Server::ActiveClients() const { return impl_->ActiveClients(); }

}  // namespace annex::console
