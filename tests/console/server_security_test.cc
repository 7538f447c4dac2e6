// Console server security rules (docs/design.md, Security): private directory
// and socket modes, peer uid, TCP token, exec-target permission, and the life
// cycle of the files on disk (removed on Stop, stale ones cleaned).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "monitor/console/internal/runtime_dir.h"
#include "tests/console/server_test_util.h"

namespace annex::console::testing {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Binds a Unix socket at `path` and closes it: what a crashed server leaves.
void LeaveDeadSocket(const std::string& path) {
  internal::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
}

// Whether this process may take uid `nobody` (root outside a user
// namespace; Bazel's linux-sandbox maps only our own uid).
bool CanSwitchToNobody() {
  if (::geteuid() != 0) return false;
  pid_t child = ::fork();
  if (child == 0) ::_exit(::setresuid(65534, 65534, 65534) == 0 ? 0 : 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

pid_t DeadPid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(SecurityTest, DirectoryIs0700AndSocketAndInfoAre0600) {
  TestServer t;
  EXPECT_EQ(ModeOf(t.dir.path()), 0700u);
  EXPECT_EQ(ModeOf(t.server->socket_path()), 0600u);
  EXPECT_EQ(ModeOf(t.server->info_path()), 0600u);
  EXPECT_EQ(t.server->socket_path(),
            absl::StrCat(t.dir.path(), "/", ::getpid(), ".sock"));
  absl::StatusOr<std::string> text =
      internal::ReadSmallFile(t.server->info_path());
  ASSERT_TRUE(text.ok());
  absl::StatusOr<internal::ProcessInfo> info = internal::ParseInfo(*text);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->pid, ::getpid());
  EXPECT_EQ(info->program, "test-program");
  EXPECT_EQ(info->python_version, "3.11.test");
  EXPECT_GT(info->start_time, 0);
}

TEST(SecurityTest, CreatesAMissingDirectoryWith0700) {
  TempDir parent;
  ServerOptions o;
  o.socket_dir = parent.path() + "/annex";
  FakeExecutor executor;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(ModeOf(o.socket_dir), 0700u);
}

TEST(SecurityTest, RefusesADirectoryOthersCanEnter) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ServerOptions o;
  o.socket_dir = dir.path();
  FakeExecutor executor;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  EXPECT_TRUE(absl::IsPermissionDenied(s.status())) << s.status();
  // The client refuses it as well.
  ClientOptions co;
  co.socket_dir = dir.path();
  EXPECT_TRUE(
      absl::IsPermissionDenied(Client::ConnectToPid(::getpid(), co).status()));
}

TEST(SecurityTest, RefusesADirectoryOwnedBySomeoneElse) {
  if (!CanSwitchToNobody()) GTEST_SKIP() << "cannot use uid nobody here";
  TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
  ServerOptions o;
  o.socket_dir = dir.path();
  FakeExecutor executor;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  EXPECT_TRUE(absl::IsPermissionDenied(s.status())) << s.status();
}

TEST(SecurityTest, RefusesASymlinkInsteadOfTheDirectory) {
  TempDir dir;
  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(dir.path().c_str(), link.c_str()), 0);
  ServerOptions o;
  o.socket_dir = link;
  FakeExecutor executor;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
}

TEST(SecurityTest, FilesAreRemovedOnStopAndInTheDestructor) {
  TempDir dir;
  FakeExecutor executor;
  ServerOptions o;
  o.socket_dir = dir.path();
  o.enable_tcp = true;
  std::string sock, info, token;
  {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
    ASSERT_TRUE(s.ok()) << s.status();
    sock = (*s)->socket_path();
    info = (*s)->info_path();
    token = (*s)->token_path();
    EXPECT_TRUE(Exists(sock) && Exists(info) && Exists(token));
    (*s)->Stop();
    EXPECT_FALSE(Exists(sock) || Exists(info) || Exists(token));
  }
  {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(Exists(sock));
  }  // destructor only
  EXPECT_FALSE(Exists(sock) || Exists(info) || Exists(token));
}

TEST(SecurityTest, StaleEndpointsOfDeadProcessesAreCleaned) {
  TempDir dir;
  pid_t dead = DeadPid();
  std::string sock = internal::SocketPath(dir.path(), dead);
  LeaveDeadSocket(sock);
  ASSERT_TRUE(
      internal::WriteFileAtomically(internal::InfoPath(dir.path(), dead),
                                    absl::StrCat("pid=", dead, "\n"))
          .ok());
  ASSERT_TRUE(Exists(sock));
  FakeExecutor executor;
  ServerOptions o;
  o.socket_dir = dir.path();
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(Exists(sock));
  EXPECT_FALSE(Exists(internal::InfoPath(dir.path(), dead)));
}

TEST(SecurityTest, LeftoverSocketAtOurOwnEndpointIsReplaced) {
  TempDir dir;
  LeaveDeadSocket(internal::SocketPath(dir.path(), ::getpid()));
  FakeExecutor executor;
  ServerOptions o;
  o.socket_dir = dir.path();
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  ASSERT_TRUE(s.ok()) << s.status();
  ClientOptions co;
  co.socket_dir = dir.path();
  EXPECT_TRUE(Client::ConnectToPid(::getpid(), co).ok());
}

TEST(SecurityTest, SecondLiveServerOnTheSameEndpointIsRefused) {
  TestServer t;
  ServerOptions o;
  o.socket_dir = t.dir.path();
  FakeExecutor executor;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o, &executor);
  EXPECT_TRUE(absl::IsAlreadyExists(s.status())) << s.status();
  // The failed start left the first server's files alone.
  EXPECT_TRUE(Exists(t.server->socket_path()));
  EXPECT_TRUE(Exists(t.server->info_path()));
  // The first one still works.
  EXPECT_TRUE(t.Connect()->Call(RequestKind::kExec, "x").ok());
}

TEST(SecurityTest, TcpIsOffByDefault) {
  TestServer t;
  EXPECT_EQ(t.server->tcp_port(), 0);
  EXPECT_TRUE(t.server->token_path().empty());
}

TEST(SecurityTest, TcpNeedsTheRightToken) {
  ServerOptions o;
  o.enable_tcp = true;
  TestServer t(o);
  ASSERT_NE(t.server->tcp_port(), 0);
  EXPECT_EQ(ModeOf(t.server->token_path()), 0600u);
  absl::StatusOr<std::string> token =
      internal::ReadSmallFile(t.server->token_path());
  ASSERT_TRUE(token.ok());
  std::string good(absl::StripAsciiWhitespace(*token));
  EXPECT_EQ(good.size(), 64u);

  ClientOptions co = t.Options();
  EXPECT_TRUE(absl::IsPermissionDenied(
      Client::ConnectTcp(t.server->tcp_port(), "", co).status()));
  std::string wrong = good;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_TRUE(absl::IsPermissionDenied(
      Client::ConnectTcp(t.server->tcp_port(), wrong, co).status()));
  absl::StatusOr<std::unique_ptr<Client>> c =
      Client::ConnectTcp(t.server->tcp_port(), good, co);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<ReplyMessage> r = (*c)->Call(RequestKind::kExec, "over tcp");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "over tcp\n");
  // ConnectToPid reads the token file itself.
  co.tcp_port = t.server->tcp_port();
  EXPECT_TRUE(Client::ConnectToPid(::getpid(), co).ok());
}

TEST(SecurityTest, TcpListensOnLoopbackOnly) {
  ServerOptions o;
  o.enable_tcp = true;
  TestServer t(o);
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  char port_hex[8];
  std::snprintf(port_hex, sizeof(port_hex), ":%04X", t.server->tcp_port());
  bool found = false;
  while (std::getline(tcp, line)) {
    // local_address is the second column: 0100007F:PORT for 127.0.0.1.
    if (line.find(port_hex) != std::string::npos &&
        line.find(" 0A ") != std::string::npos) {  // 0A = LISTEN
      found = true;
      EXPECT_NE(line.find(absl::StrCat("0100007F", port_hex)),
                std::string::npos)
          << line;
    }
  }
  EXPECT_TRUE(found);
}

TEST(SecurityTest, ExecTargetNeedsThePermission) {
  {
    TestServer t;
    std::unique_ptr<Client> c = t.Connect();
    for (RequestKind kind :
         {RequestKind::kExecTarget, RequestKind::kInterruptThread}) {
      absl::StatusOr<ReplyMessage> r = c->Call(kind, "1");
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->status, ReplyStatus::kRefused);
    }
    EXPECT_EQ(t.executor.executed(), 0);
    // Inspection is allowed.
    absl::StatusOr<ReplyMessage> r = c->Call(RequestKind::kThreads, "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, ReplyStatus::kOk);
  }
  {
    ServerOptions o;
    o.allow_exec_target = true;
    TestServer t(o);
    std::unique_ptr<Client> c = t.Connect();
    EXPECT_NE(c->welcome().capabilities & kCapExecTarget, 0u);
    absl::StatusOr<ReplyMessage> r = c->Call(RequestKind::kExecTarget, "x=1");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, ReplyStatus::kOk);
    EXPECT_EQ(r->output, "target:x=1\n");
  }
}

// The peer-uid check needs a client whose effective uid differs from ours.
// We run as root: a forked child takes euid `nobody` (so SO_PEERCRED, which
// reports the euid, says 65534) but keeps fsuid 0 so it can still reach the
// socket through the 0700 directory; that isolates the SO_PEERCRED check
// from the directory's protection.
TEST(SecurityTest, PeerWithAnotherUidIsRefused) {
  if (!CanSwitchToNobody()) GTEST_SKIP() << "cannot switch to uid nobody";
  TestServer t;
  std::string path = t.server->socket_path();
  ClientOptions co = t.Options();
  pid_t child = ::fork();
  if (child == 0) {
    if (::setresuid(0, 65534, 0) != 0) ::_exit(10);
    ::setfsuid(0);
    if (static_cast<uid_t>(::setfsuid(-1)) != 0) ::_exit(11);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::ConnectToPath(path, co);
    if (c.ok()) ::_exit(1);
    if (!absl::IsPermissionDenied(c.status())) ::_exit(2);
    // Refused by the server's SO_PEERCRED check, not by the directory.
    ::_exit(absl::StrContains(c.status().message(), "peer uid") ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: accepted, 2: other error, 3: refused by the directory, "
         "10/11: could not switch uid";
  EXPECT_EQ(t.executor.opened(), 0);
}

// Without the fsuid trick a stranger cannot even reach the socket.
TEST(SecurityTest, StrangerCannotEnterTheDirectory) {
  if (!CanSwitchToNobody()) GTEST_SKIP() << "cannot switch to uid nobody";
  TestServer t;
  std::string path = t.server->socket_path();
  ClientOptions co = t.Options();
  pid_t child = ::fork();
  if (child == 0) {
    if (::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::ConnectToPath(path, co);
    if (c.ok()) ::_exit(1);
    ::_exit(absl::IsPermissionDenied(c.status()) ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Issue 16: another local user that keeps many TCP connections open without
// ever authenticating (reconnecting when dropped) must not lock the owner
// out of its own Unix socket. The stranger is a uid created for the test (no
// account needed: setresuid to an unused number), which needs root.
TEST(SecurityTest, UnauthenticatedTcpStrangerDoesNotLockOutTheOwner) {
  if (!CanSwitchToNobody()) {
    GTEST_SKIP() << "needs root outside a user namespace to run a client "
                    "as another uid";
  }
  ServerOptions o;
  o.enable_tcp = true;
  o.max_clients = 8;
  o.handshake_timeout = absl::Seconds(30);  // the stranger's are not dropped
  TestServer t(o);
  const int port = t.server->tcp_port();
  ASSERT_NE(port, 0);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    if (::setresgid(54321, 54321, 54321) != 0 ||
        ::setresuid(54321, 54321, 54321) != 0) {
      ::_exit(10);
    }
    // Hold up to 32 silent connections; replace each one the server closes.
    std::vector<int> fds;
    bool told = false;
    for (;;) {
      while (fds.size() < 32) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
          ::close(fd);
          break;
        }
        fds.push_back(fd);
      }
      if (!told) {
        (void)!::write(ready[1], "r", 1);
        told = true;
      }
      // Drop the connections the server refused or closed (EOF or error).
      for (auto it = fds.begin(); it != fds.end();) {
        char b[256];
        ssize_t n = ::recv(*it, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          ::close(*it);
          it = fds.erase(it);
        } else {
          ++it;
        }
      }
      ::usleep(2000);
    }
  }
  ::close(ready[1]);
  char b;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  ::close(ready[0]);
  // The stranger holds as many pending connections as the server lets it.
  t.WaitForClients(o.max_unauthenticated_per_peer);

  // Every one of the owner's attempts works, up to max_clients at once.
  std::vector<std::unique_ptr<Client>> owners;
  for (int i = 0; i < o.max_clients; ++i) {
    absl::StatusOr<std::unique_ptr<Client>> c =
        Client::ConnectToPath(t.server->socket_path(), t.Options());
    ASSERT_TRUE(c.ok()) << "attempt " << i << ": " << c.status();
    absl::StatusOr<ReplyMessage> r =
        (*c)->Call(RequestKind::kExec, absl::StrCat("owner ", i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->output, absl::StrCat("owner ", i, "\n"));
    owners.push_back(std::move(*c));
  }
  // The stranger never got more than its per-peer share.
  EXPECT_EQ(t.server->ActiveClients(),
            o.max_clients + o.max_unauthenticated_per_peer);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status)) << "10: could not switch uid";
}

}  // namespace
}  // namespace annex::console::testing
