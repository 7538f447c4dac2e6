// hp's heap surface through the public API, on leaks planted at known places.
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

// `code` (any number of statements) as one console line: exec() in the
// host namespace `namespace_id`.
std::string AsOneLine(const std::string& code) {
  std::string quoted = "exec('";
  for (char c : code) {
    if (c == '\\' || c == '\'') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "')";
}

std::string Exec(Monitor& m, const std::string& code) {
  auto out = m.ExecInAnnex(code);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

class HpHeapTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  Monitor monitor_;
};

TEST_F(HpHeapTest, SetrefThenHeapShowsExactlyThePlantedLeak) {
  ASSERT_TRUE(
      RunTargetCode("class LeakedSession:\n"
                    "    __slots__ = ('n',)\n"
                    "    def __init__(self, n): self.n = n\n"
                    "registry = {'handlers': [], 'cache': {}}\n"));
  // In the host's session 1: its hp (and reference point) lasts between
  // calls; a one-off ExecInAnnex's would end with its namespace.
  ASSERT_TRUE(monitor_.ExecInAnnex("hp.setref()", 1).ok());
  ASSERT_TRUE(RunTargetCode(
      "for i in range(100):\n"
      "    registry['cache'][i + 1000] = LeakedSession(i + 1000)\n"));
  std::string table =
      monitor_.ExecInAnnex(AsOneLine("h = hp.heap()\nprint(h)\n"), 1)
          .value_or("");
  EXPECT_NE(table.find("Partition of a set of"), std::string::npos) << table;
  EXPECT_NE(table.find("__main__.LeakedSession"), std::string::npos) << table;
  // The row of the leaked class counts exactly the planted objects.
  std::string counts =
      monitor_
          .ExecInAnnex(
              AsOneLine(
                  "h = hp.heap()\n"
                  "rows = [h[i] for i in range(len(h.all.splitlines()) - 2)]\n"
                  "leak = [r for r in rows if r.kind == "
                  "'__main__.LeakedSession'][0]\n"
                  "print(leak.count, leak.size)\n"),
              1)
          .value_or("");
  long size = TargetLong(
      "sum(__import__('sys').getsizeof(v) for v in "
      "registry['cache'].values())");
  EXPECT_EQ(counts, "100 " + std::to_string(size) + "\n");
}

TEST_F(HpHeapTest, ShortestPathNamesThePlantedPlace) {
  ASSERT_TRUE(RunTargetCode(
      "class Handler:\n"
      "    pass\n"
      "class Holder:\n"
      "    pass\n"
      "app_registry = {'handlers': [None, None, None, Holder()]}\n"
      "app_registry['handlers'][3].cache = Handler()\n"));
  std::string paths =
      Exec(monitor_,
           "h = hp.heap()\n"
           "rows = [h[i] for i in range(len(h.all.splitlines()) - 2)]\n"
           "handler = [r for r in rows if r.kind == '__main__.Handler'][0]\n"
           "print(handler.count)\n"
           "print(handler.sp)\n");
  EXPECT_EQ(paths.substr(0, 2), "1\n") << paths;
  EXPECT_NE(paths.find("%R.sys.modules['__main__'].__dict__['app_registry']"
                       "['handlers'][3]"),
            std::string::npos)
      << paths;
  EXPECT_NE(paths.find("cache"), std::string::npos) << paths;
}

TEST_F(HpHeapTest, DomisizeEqualsTheTargetsOwnSizes) {
  // Each Blob alone holds its bytearray: freeing the Blobs frees both.
  ASSERT_TRUE(
      RunTargetCode("class Blob:\n"
                    "    __slots__ = ('data',)\n"
                    "owned = [Blob() for _ in range(3)]\n"
                    "for b in owned:\n"
                    "    b.data = bytearray(1000)\n"
                    "del b\n"));
  long expected = TargetLong(
      "sum(__import__('sys').getsizeof(b) + __import__('sys').getsizeof(b.data)"
      " for b in owned)");
  std::string out =
      Exec(monitor_,
           "h = hp.heap()\n"
           "rows = [h[i] for i in range(len(h.all.splitlines()) - 2)]\n"
           "blobs = [r for r in rows if r.kind == '__main__.Blob'][0]\n"
           "print(blobs.count, blobs.domisize)\n");
  EXPECT_EQ(out, "3 " + std::to_string(expected) + "\n");
}

TEST_F(HpHeapTest, SetAlgebraAndHeapu) {
  std::string out = Exec(
      monitor_,
      "a = hp.heap()\n"
      "b = hp.heap()\n"
      "print(len(a - a), len(a & a) == len(a), len(a | hp.Nothing) == len(a))\n"
      "print(len(a ^ a), (a - b).count <= a.count)\n");
  EXPECT_EQ(out.substr(0, 15), "0 True True\n0 T") << out;
  ASSERT_TRUE(
      RunTargetCode("import gc\n"
                    "gc.disable()\n"
                    "class Cyc:\n"
                    "    pass\n"
                    "_c = Cyc(); _c.me = _c; del _c\n"));
  std::string u = Exec(monitor_, "print('__main__.Cyc' in hp.heapu().all)\n");
  EXPECT_EQ(u, "True\n");
  ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
}

TEST_F(HpHeapTest, HeapuShowsNothingOfAnnexItself) {
  // This binary's target never imported atexit; the annex's safety net did
  // (and left sys.modules as it was, holding the module itself). Neither
  // that module nor its functions may show in heapu().
  PyObject* had = EvalTarget("'atexit' in __import__('sys').modules");
  ASSERT_EQ(had, Py_False) << "the test needs a host without atexit";
  Py_XDECREF(had);
  ASSERT_TRUE(RunTargetCode("import gc; gc.collect()"));
  std::string out = Exec(monitor_,
                         "u = hp.heapu()\n"
                         "print('module' in u.all.split())\n");
  EXPECT_EQ(out, "False\n");
}

TEST_F(HpHeapTest, IdleAnnexSeesTheSameHeapEachTime) {
  std::string out = Exec(monitor_,
                         "counts = {len(hp.heap()) for _ in range(20)}\n"
                         "print(len(counts))\n");
  EXPECT_EQ(out, "1\n");
}

// On 3.12 and later every thread-state swap may hand the GIL to a waiting
// target thread (heap_engine.h). Threads that call and return from Python
// functions all the time free the frame objects a walk found as roots as
// soon as they run again, so a question must read what its walk found before
// any swap. (Before HeapEngine::Question this crashed the host on 3.12/3.13.)
TEST_F(HpHeapTest, QuestionsWhileTargetThreadsChurnFrames) {
  ASSERT_TRUE(RunTargetCode(
      "import threading\n"
      "churn_stop = threading.Event()\n"
      "def churn_down(n):\n"
      "    view = memoryview(bytearray(32))\n"
      "    if n == 0: return [bytearray(64), {'k': view}]\n"
      "    return churn_down(n - 1)\n"
      "def churn():\n"
      "    while not churn_stop.is_set():\n"
      "        churn_down(30)\n"
      "churners = [threading.Thread(target=churn) for _ in range(2)]\n"
      "for t in churners: t.start()\n"));
  std::string out = Exec(monitor_,
                         "ok = 0\n"
                         "for _ in range(30):\n"
                         "    h = hp.heap()\n"
                         "    ok += len(h) > 1000 and h.size > 0\n"
                         "    h[0].byid\n"
                         "    h[0].sp\n"
                         "    hp.heapu()\n"
                         "print(ok)\n");
  ASSERT_TRUE(RunTargetCode("churn_stop.set()\nfor t in churners: t.join()\n"));
  EXPECT_EQ(out, "30\n");
}

}  // namespace
}  // namespace annex
