// `annex run` and a venv, as python3 itself treats one: with VIRTUAL_ENV
// set (an activated venv) or `--python VENV/bin/python`, the program gets
// the venv's prefix and site-packages (a package installed only there is
// importable); without either it does not. An interpreter of another
// version is refused with a message. And `annex attach` to a process
// without Annex says how to enable it.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::RunProcess;

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

// Runs argv with `env` ("K=V") added, or removed when "K" alone; stdin is
// empty. Its output is stdout followed by stderr.
Result RunCmd(const std::vector<std::string>& argv,
              const std::vector<std::string>& env = {}) {
  ::annex::testing::ProcessResult r = RunProcess(argv, "", env);
  return {r.exit_code, r.out + r.err};
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
