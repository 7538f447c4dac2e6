// The per-user runtime directory: verification rules, info files, stale
// endpoint cleanup and the token helpers.
#include "monitor/console/internal/runtime_dir.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/console/internal/fd.h"
#include "tests/console/fake_executor.h"

namespace annex::console::internal {
namespace {

using ::annex::console::testing::TempDir;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void BindAndClose(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
}

// A child process that stays alive until the scope ends: a live pid that is
// neither ours nor 1, whatever pid namespace the test runs in.
class LiveChild {
 public:
  LiveChild() : pid_(::fork()) {
    if (pid_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~LiveChild() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

void MakeOld(const std::string& path) {
  timeval times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::lutimes(path.c_str(), times), 0);
}

TEST(RuntimeDirTest, DefaultIsXdgRuntimeDirWhenOursElseTmp) {
  const char* saved = std::getenv("XDG_RUNTIME_DIR");
  std::string saved_value = saved ? saved : "";
  TempDir xdg;
  ::setenv("XDG_RUNTIME_DIR", xdg.path().c_str(), 1);
  EXPECT_EQ(*DefaultRuntimeDir(), xdg.path() + "/annex");
  ::setenv("XDG_RUNTIME_DIR", "relative/path", 1);
  EXPECT_EQ(*DefaultRuntimeDir(), absl::StrCat("/tmp/annex-", ::geteuid()));
  ::setenv("XDG_RUNTIME_DIR", "/nonexistent-annex-dir", 1);
  EXPECT_EQ(*DefaultRuntimeDir(), absl::StrCat("/tmp/annex-", ::geteuid()));
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(*DefaultRuntimeDir(), absl::StrCat("/tmp/annex-", ::geteuid()));
  if (saved) ::setenv("XDG_RUNTIME_DIR", saved_value.c_str(), 1);
}

TEST(RuntimeDirTest, VerifyRejectsFilesOpenModesAndMissingDirs) {
  TempDir dir;
  EXPECT_TRUE(VerifyPrivateDir(dir.path()).ok());
  for (mode_t mode : {0750, 0705, 0701, 0770, 0777}) {
    ASSERT_EQ(::chmod(dir.path().c_str(), mode), 0);
    EXPECT_TRUE(absl::IsPermissionDenied(VerifyPrivateDir(dir.path())))
        << std::oct << mode;
  }
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  std::string file = dir.path() + "/file";
  ASSERT_TRUE(WriteFileAtomically(file, "x").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(VerifyPrivateDir(file)));
  EXPECT_TRUE(absl::IsNotFound(VerifyPrivateDir(dir.path() + "/missing")));
  // EnsurePrivateDir does not "fix" an existing open directory.
  std::string open_dir = dir.path() + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0755), 0);
  EXPECT_TRUE(absl::IsPermissionDenied(EnsurePrivateDir(open_dir)));
  struct stat st;
  ASSERT_EQ(::stat(open_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST(RuntimeDirTest, InfoRoundTripAndNoKeyForgery) {
  ProcessInfo info;
  info.pid = 42;
  info.program = "app --evil\npid=1";
  info.python_version = "3.11.2";
  info.start_time = 1700000000;
  info.tcp_port = 4242;
  absl::StatusOr<ProcessInfo> back = ParseInfo(FormatInfo(info));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->program, "app --evil pid=1");
  EXPECT_EQ(back->python_version, "3.11.2");
  EXPECT_EQ(back->start_time, 1700000000);
  EXPECT_EQ(back->tcp_port, 4242);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseInfo("program=x\n").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseInfo("pid=-3\n").status()));
  EXPECT_TRUE(ParseInfo("pid=5\nfuture_key=1\nstart_time=junk\n").ok());
}

TEST(RuntimeDirTest, WriteFileAtomicallyIsOwnerOnlyAndReplaces) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two").ok());
  EXPECT_EQ(*ReadSmallFile(path), "two");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(Exists(path + ".tmp"));
  EXPECT_TRUE(absl::IsResourceExhausted(ReadSmallFile(path, 2).status()));
  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(ReadSmallFile(link).ok());  // never follows symlinks
}

TEST(RuntimeDirTest, CleansDeadPidsAndRefusingOldSocketsOnly) {
  TempDir dir;
  // A dead pid.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  BindAndClose(SocketPath(dir.path(), dead));
  ASSERT_TRUE(WriteFileAtomically(InfoPath(dir.path(), dead), "pid=1").ok());
  // A live pid (init) whose old socket refuses: the pid was reused.
  BindAndClose(SocketPath(dir.path(), 1));
  MakeOld(SocketPath(dir.path(), 1));
  // A live pid whose socket is brand new: maybe between bind and listen.
  LiveChild child;
  pid_t parent = child.pid();
  BindAndClose(SocketPath(dir.path(), parent));
  // Our own endpoint is kept whatever its state.
  BindAndClose(SocketPath(dir.path(), ::getpid()));
  MakeOld(SocketPath(dir.path(), ::getpid()));

  EXPECT_EQ(CleanStaleEndpoints(dir.path(), ::getpid()), 2);
  EXPECT_FALSE(Exists(SocketPath(dir.path(), dead)));
  EXPECT_FALSE(Exists(InfoPath(dir.path(), dead)));
  EXPECT_FALSE(Exists(SocketPath(dir.path(), 1)));
  EXPECT_TRUE(Exists(SocketPath(dir.path(), parent)));
  EXPECT_TRUE(Exists(SocketPath(dir.path(), ::getpid())));
}

// A server in another PID namespace (a container, a sandboxed test) that
// shares the directory: kill(2) cannot see its pid, but its socket answers.
// Removing it made live processes unattachable while tests ran beside them.
TEST(RuntimeDirTest, KeepsAListeningSocketWhosePidIsNotVisible) {
  TempDir dir;
  pid_t invisible = ::fork();
  if (invisible == 0) ::_exit(0);
  ::waitpid(invisible, nullptr, 0);
  ASSERT_FALSE(ProcessAlive(invisible));
  const std::string path = SocketPath(dir.path(), invisible);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  ASSERT_TRUE(
      WriteFileAtomically(InfoPath(dir.path(), invisible), "pid=1").ok());
  MakeOld(path);

  EXPECT_EQ(CleanStaleEndpoints(dir.path(), ::getpid()), 0);
  EXPECT_TRUE(Exists(path));
  EXPECT_TRUE(Exists(InfoPath(dir.path(), invisible)));
  ::close(fd);
  // Once nobody listens, it is stale.
  EXPECT_EQ(CleanStaleEndpoints(dir.path(), ::getpid()), 1);
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(InfoPath(dir.path(), invisible)));
}

TEST(RuntimeDirTest, ListEndpointsTrustsTheFileNameNotTheContents) {
  TempDir dir;
  pid_t me = ::getpid();
  BindAndClose(SocketPath(dir.path(), me));
  ProcessInfo info;
  info.pid = me;
  info.program = "me";
  ASSERT_TRUE(
      WriteFileAtomically(InfoPath(dir.path(), me), FormatInfo(info)).ok());
  // An info file whose pid disagrees with its name is skipped.
  LiveChild child;
  pid_t parent = child.pid();
  BindAndClose(SocketPath(dir.path(), parent));
  ASSERT_TRUE(
      WriteFileAtomically(InfoPath(dir.path(), parent), FormatInfo(info)).ok());
  std::vector<ProcessInfo> list = ListEndpoints(dir.path());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].pid, me);
  EXPECT_EQ(list[0].program, "me");
}

TEST(RuntimeDirTest, TokensAreRandomHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::string> t = RandomToken();
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->size(), 64u);
    EXPECT_EQ(t->find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(*t);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(RuntimeDirTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace annex::console::internal
