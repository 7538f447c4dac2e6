// `annex run` and a venv, as python3 itself treats one: with VIRTUAL_ENV
// set (an activated venv) or `--python VENV/bin/python`, the program gets
// the venv's prefix and site-packages (a package installed only there is
// importable); without either it does not. An interpreter of another
// version is refused with a message. And `annex attach` to a process
// without Annex says how to enable it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "annex_python_build.h"
#include "gtest/gtest.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// TempDir() without its trailing '/', so that joined paths are the ones
// Python reports.
std::string Tmp() {
  std::string d = ::testing::TempDir();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

std::string AnnexBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/annex/monitor/cli/annex";
}

// Runs argv with `env` ("K=V") added, or removed when "K" alone; stdin is
// /dev/null, the output goes through a file.
Result RunCmd(const std::vector<std::string>& argv,
              const std::vector<std::string>& env = {}) {
  const std::string out_path = Tmp() + "/run.out";
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (const std::string& kv : env) {
      if (kv.find('=') == std::string::npos) {
        unsetenv(kv.c_str());
      } else {
        putenv(const_cast<char*>(kv.c_str()));
      }
    }
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Result r;
  r.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream f(out_path);
  std::stringstream ss;
  ss << f.rdbuf();
  r.output = ss.str();
  return r;
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// A venv made by the build's Python (`python -m venv --without-pip`) with a
// module `only_in_venv` in its site-packages.
class VenvTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    venv_ = new std::string(Tmp() + "/venv");
    Result made = RunCmd(
        {ANNEX_PYTHON_EXECUTABLE, "-m", "venv", "--without-pip", *venv_});
    ASSERT_EQ(made.exit_code, 0) << made.output;
    WriteFile(*venv_ + "/lib/python" ANNEX_PYTHON_VERSION
                       "/site-packages/only_in_venv.py",
              "WHERE = 'venv'\n");
    script_ =
        new std::string(WriteFile(Tmp() + "/app.py",
                                  "import sys\n"
                                  "import only_in_venv\n"
                                  "print('imported from', only_in_venv.WHERE)\n"
                                  "print('prefix', sys.prefix)\n"
                                  "print('base_prefix', sys.base_prefix)\n"
                                  "print('executable', sys.executable)\n"));
  }
  static std::string* venv_;
  static std::string* script_;
};
std::string* VenvTest::venv_ = nullptr;
std::string* VenvTest::script_ = nullptr;

TEST_F(VenvTest, ActiveVenvIsHonouredLikePython) {
  const std::string env = "VIRTUAL_ENV=" + *venv_;
  Result annex =
      RunCmd({AnnexBinary(), "run", "--no-console", *script_}, {env});
  ASSERT_EQ(annex.exit_code, 0) << annex.output;
  EXPECT_NE(annex.output.find("imported from venv"), std::string::npos);
  EXPECT_NE(annex.output.find("prefix " + *venv_ + "\n"), std::string::npos)
      << annex.output;
  EXPECT_NE(annex.output.find("executable " + *venv_ + "/bin/python\n"),
            std::string::npos)
      << annex.output;
  // The venv's own python agrees on everything but the executable's name.
  Result python = RunCmd({*venv_ + "/bin/python", *script_});
  ASSERT_EQ(python.exit_code, 0) << python.output;
  auto line = [](const std::string& text, const std::string& key) {
    size_t at = text.find(key + " ");
    return at == std::string::npos ? std::string()
                                   : text.substr(at, text.find('\n', at) - at);
  };
  for (const char* key : {"prefix", "base_prefix"}) {
    EXPECT_EQ(line(annex.output, key), line(python.output, key));
  }
}

TEST_F(VenvTest, PythonOptionPicksTheInterpreter) {
  Result annex = RunCmd({AnnexBinary(), "run", "--no-console", "--python",
                         *venv_ + "/bin/python", *script_},
                        {"VIRTUAL_ENV"});
  ASSERT_EQ(annex.exit_code, 0) << annex.output;
  EXPECT_NE(annex.output.find("imported from venv"), std::string::npos);
}

TEST_F(VenvTest, WithoutTheVenvThePackageIsAbsent) {
  Result annex =
      RunCmd({AnnexBinary(), "run", "--no-console", *script_}, {"VIRTUAL_ENV"});
  EXPECT_EQ(annex.exit_code, 1) << annex.output;
  EXPECT_NE(annex.output.find("No module named 'only_in_venv'"),
            std::string::npos)
      << annex.output;
}

TEST(AnnexRunPythonTest, OtherVersionOrNoInterpreterIsRefused) {
  // A stand-in interpreter that says it is Python 2.7.
  const std::string fake = Tmp() + "/python2.7";
  WriteFile(fake, "#!/bin/sh\necho 2.7\n");
  chmod(fake.c_str(), 0755);
  Result other = RunCmd({AnnexBinary(), "run", "--python", fake, "-c", "pass"});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.output.find("is Python 2.7, but this annex is built for "
                              "Python " ANNEX_PYTHON_VERSION),
            std::string::npos)
      << other.output;
  Result missing = RunCmd(
      {AnnexBinary(), "run", "--python", "/no/such/python", "-c", "pass"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("no executable interpreter at /no/such/python"),
            std::string::npos)
      << missing.output;
  Result venv = RunCmd({AnnexBinary(), "run", "-c", "pass"},
                       {"VIRTUAL_ENV=/no/such/venv"});
  EXPECT_EQ(venv.exit_code, 2);
  EXPECT_NE(venv.output.find("has no bin/python"), std::string::npos)
      << venv.output;
}

TEST(AnnexAttachTest, ProcessWithoutAnnexSaysHowToEnableIt) {
  char dir[] = "/tmp/annex-venv-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  // This test process runs, without Annex.
  Result r = RunCmd({AnnexBinary(), "attach", std::to_string(getpid())}, {env});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("runs but has no Annex console"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("import annex; annex.start(console=True)"),
            std::string::npos)
      << r.output;
  // A pid that is not running (pid_max is below 2^22 on Linux).
  Result gone = RunCmd({AnnexBinary(), "exec", "4194303", "1"}, {env});
  EXPECT_EQ(gone.exit_code, 3) << gone.output;
  EXPECT_NE(gone.output.find("there is no process 4194303"), std::string::npos)
      << gone.output;
  rmdir((std::string(dir) + "/annex").c_str());
  rmdir(dir);
}

}  // namespace
