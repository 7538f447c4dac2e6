// Attribute values that sys.getsizeof leaves out (issue 12): 3.11/3.12
// instances whose attributes are inline keep them in a block allocated
// apart; 3.13 allocates an inline values area with the object. By default
// (Sizing::kExact) each instance's recorded size is sys.getsizeof plus
// that block, with Sizing::kGetsizeof sys.getsizeof alone, and nothing is
// created to find it (no __dict__ is materialized). The expected bytes are the
// target's real allocations, measured by tracemalloc while the fixture is
// built.
#include <Python.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/version.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

// Builds K instances of a class whose __init__ sets `n` attributes (after
// enough instances that CPython's per-class sizing has settled), with
// tracemalloc tracing only the creation loop; `iv_real[name]` is then the
// bytes really allocated for them minus their sys.getsizeof, i.e. what
// the values blocks take.
void BuildFixture(const std::string& name, int n) {
  std::string attrs;
  for (int i = 0; i < n; ++i)
    attrs += "self.a" + std::to_string(i) + " = None; ";
  const std::string code =
      "import gc, sys, tracemalloc\n"
      "class " +
      name +
      ":\n"
      "    def __init__(self):\n"
      "        " +
      attrs +
      "\n"
      "_warm = [" +
      name +
      "() for _ in range(64)]\n"
      "K = 50\n"
      "_idx = list(range(K))\n"
      "batch = [None] * K\n"
      "tracemalloc.start()\n"
      "for i in _idx:\n"
      "    batch[i] = " +
      name +
      "()\n"
      "_snap = tracemalloc.take_snapshot()\n"
      "tracemalloc.stop()\n"
      "_mine = _snap.filter_traces([tracemalloc.Filter(True, __file__)])\n"
      "iv_real[" +
      std::string("'") + name +
      "'] = (\n"
      "    sum(t.size for t in _mine.traces)\n"
      "    - sum(sys.getsizeof(o) for o in batch))\n"
      "iv_batch['" +
      name +
      "'] = batch\n"
      "iv_ids['" +
      name + "'] = [id(o) for o in batch]\n";
  const std::string wrapped =
      "exec(compile(" +
      [&] {
        std::string q = "'''";
        return q + code + q;
      }() +
      ", 'iv_fixture_" + name +
      ".py', 'exec'), {'iv_real': iv_real, "
      "'iv_batch': iv_batch, 'iv_ids': iv_ids, '__file__': 'iv_fixture_" +
      name + ".py', '__name__': '__main__'})\n";
  ASSERT_TRUE(
      RunTargetCode("iv_real = globals().get('iv_real', {})\n"
                    "iv_batch = globals().get('iv_batch', {})\n"
                    "iv_ids = globals().get('iv_ids', {})\n"));
  ASSERT_TRUE(RunTargetCode(wrapped)) << wrapped;
}

std::vector<uintptr_t> Ids(const std::string& name) {
  std::vector<uintptr_t> out;
  const long k = TargetLong("len(iv_ids['" + name + "'])");
  for (long i = 0; i < k; ++i) {
    out.push_back(static_cast<uintptr_t>(
        TargetLong("iv_ids['" + name + "'][" + std::to_string(i) + "]")));
  }
  return out;
}

TEST(InlineValuesTest, ValuesBlocksAreAccountedAsAllocated) {
  for (int n : {3, 9}) {
    const std::string name = "IvNode" + std::to_string(n);
    BuildFixture(name, n);
    const long real = TargetLong("iv_real['" + name + "']");
    ASSERT_GT(real, 0) << name;
    const std::vector<uintptr_t> ids = Ids(name);
    ASSERT_EQ(ids.size(), 50u);
    // Every instance still has its attributes inline: nothing made dicts.
    for (uintptr_t a : ids) {
      ASSERT_EQ(python::ExistingInstanceDict(reinterpret_cast<PyObject*>(a)),
                nullptr);
    }
    HeapEngine engine(testing::MainThreadStates());
    HeapEngine::Question q(engine);
    ASSERT_TRUE(q.status().ok());
    ASSERT_EQ(engine.sizing(), Sizing::kExact);  // the default
    HeapResult stats;
    absl::StatusOr<HeapGraph> with = engine.Graph(&stats);
    absl::StatusOr<HeapGraph> plain;
    {
      HeapEngine::ScopedSizing sizing(engine, Sizing::kGetsizeof);
      plain = engine.Graph();
      for (uintptr_t a : ids) {
        absl::StatusOr<uint64_t> s =
            engine.SizeOf(reinterpret_cast<PyObject*>(a));
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(plain->sizes[plain->Find(a)], *s);
      }
    }
    ASSERT_EQ(engine.sizing(), Sizing::kExact);
    ASSERT_TRUE(plain.ok() && with.ok());
    ASSERT_EQ(plain->addresses, with->addresses);
    uint64_t added = 0, getsizeof = 0;
    for (uintptr_t a : ids) {
      const int64_t v = with->Find(a);
      ASSERT_GE(v, 0);
      getsizeof += plain->sizes[v];
      added += with->sizes[v] - plain->sizes[v];
      absl::StatusOr<uint64_t> exact =
          engine.SizeOf(reinterpret_cast<PyObject*>(a));
      ASSERT_TRUE(exact.ok());
      EXPECT_EQ(*exact, with->sizes[v]);
    }
    EXPECT_EQ(getsizeof, static_cast<uint64_t>(TargetLong(
                             "sum(__import__('sys').getsizeof(o) for o in "
                             "iv_batch['" +
                             name + "'])")));
    // What the values blocks really took, as the allocator was asked.
    EXPECT_EQ(added, static_cast<uint64_t>(real)) << name;
    // Each holds at least its n attribute slots.
    EXPECT_GE(added, ids.size() * n * sizeof(PyObject*)) << name;
    // Totals agree with the per-object sizes.
    uint64_t total_plain = 0, total_with = 0;
    for (uint64_t s : plain->sizes) total_plain += s;
    for (uint64_t s : with->sizes) total_with += s;
    EXPECT_EQ(total_with - total_plain, stats.inline_values_bytes);
    EXPECT_GE(stats.inline_values_bytes, added);
  }
}

TEST(InlineValuesTest, MaterializedDictAndSlotsObjects) {
  ASSERT_TRUE(RunTargetCode(R"(
class IvDict:
    def __init__(self):
        self.a = None; self.b = None
iv_d = IvDict()
iv_d.__dict__  # materialized: the dict object holds the values now
class IvSlots:
    __slots__ = ('a', 'b')
iv_s = IvSlots()
)"));
  PyObject* d = EvalTarget("iv_d");
  PyObject* s = EvalTarget("iv_s");
  ASSERT_NE(d, nullptr);
  ASSERT_NE(s, nullptr);
  ASSERT_NE(python::ExistingInstanceDict(d), nullptr);
  EXPECT_EQ(python::InlineValuesBytes(s), 0u);
#if PY_VERSION_HEX >= 0x030D0000
  // 3.13 allocated the inline area with the object: it stays.
  EXPECT_GE(python::InlineValuesBytes(d), 2 * sizeof(PyObject*));
#else
  // The dict object's own size covers its values now.
  EXPECT_EQ(python::InlineValuesBytes(d), 0u);
#endif
  Py_DECREF(d);
  Py_DECREF(s);
}

}  // namespace
}  // namespace annex::heap
