// Identity over time (python/death_watch.h, HeapEngine::SetRef/SinceRef):
// the allocator and the free lists reuse the address of a dead object at
// once, and a reference point must still tell the new object from the old.
// Each test forces reuse and checks in the test that it happened.
#include <Python.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/version.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

constexpr int kN = 300;

struct Kind {
  const char* name;
  const char* make;  // an expression of `i` making one new object
};

class ReuseTest : public ::testing::TestWithParam<Kind> {};

// Free N objects of a kind after the reference point, then allocate new
// ones of the same type and size until most of the freed addresses hold a
// new object (or 20 N were made): SinceRef() holds every new one. The
// allocator does not give freed blocks back first when other pools of the
// same size class have free blocks (a long test run leaves many), so a
// fixed N new objects reused only 111 of 300 addresses on 3.13 in a full
// run; allocating on until the addresses are taken makes reuse certain,
// and the test checks that it happened.
TEST_P(ReuseTest, NewObjectsAtReusedAddressesAreNew) {
  const Kind& kind = GetParam();
  ASSERT_TRUE(RunTargetCode(absl::StrCat(R"(
import gc
class IdObj:
    def __init__(self, v):
        self.v = v
def id_make(i):
    return )",
                                         kind.make, R"(
id_old = [id_make(i) for i in range(1000, 1000 + )",
                                         kN, R"()]
id_old_ids = frozenset(id(o) for o in id_old)
id_kept = [1, 2, 3]
gc.collect()
)")));
  HeapEngine engine(testing::MainThreadStates());
  ASSERT_TRUE(engine.SetRef().ok());
  ASSERT_TRUE(RunTargetCode(absl::StrCat(R"(
del id_old
id_new = []
id_reused = 0
while id_reused < )",
                                         kN * 9 / 10, R"( and len(id_new) < )",
                                         20 * kN, R"(:
    o = id_make(len(id_new))
    id_new.append(o)
    if id(o) in id_old_ids:
        id_reused += 1
del o
id_new_ids = [id(o) for o in id_new]
)")));
  const long reused = TargetLong("id_reused");
  // The premise: the allocator did reuse the freed addresses.
  ASSERT_GE(reused, kN / 2) << kind.name << ": too little reuse to test ("
                            << TargetLong("len(id_new)") << " made)";
  absl::StatusOr<ObjectSet> since = engine.SinceRef();
  ASSERT_TRUE(since.ok()) << since.status();
  PyObject* ids = EvalTarget("id_new_ids");
  ASSERT_NE(ids, nullptr);
  std::vector<uintptr_t> fresh = testing::AddressesOf(ids);
  Py_DECREF(ids);
  ASSERT_GE(fresh.size(), static_cast<size_t>(reused));
  int missing = 0;
  for (uintptr_t a : fresh) missing += since->contains(a) ? 0 : 1;
  EXPECT_EQ(missing, 0) << kind.name << ": " << missing << " of "
                        << fresh.size() << " new objects missing (" << reused
                        << " at reused addresses)";
  EXPECT_TRUE(since->contains(testing::MainGlobalId("id_new")));
  // An object of the reference point that is still alive is not new.
  EXPECT_FALSE(since->contains(testing::MainGlobalId("id_kept")));
  ASSERT_TRUE(
      RunTargetCode("del id_new, id_new_ids, id_kept, id_old_ids, id_reused"));
}

INSTANTIATE_TEST_SUITE_P(FreeListAndAllocatorTypes, ReuseTest,
                         ::testing::Values(Kind{"list", "[i]"},
                                           Kind{"dict", "{'k': i}"},
                                           Kind{"tuple", "(i, 'x')"},
                                           Kind{"float", "i + 0.5"},
                                           Kind{"instance", "IdObj(i)"},
                                           Kind{"bytes", "b'%05d' % i"}),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return std::string(info.param.name);
                         });

// Watched addresses of target objects named by a Python expression (a list
// of ids), ascending.
std::vector<uintptr_t> SortedIds(const char* expression) {
  PyObject* ids = EvalTarget(expression);
  if (ids == nullptr) return {};
  std::vector<uintptr_t> out = testing::AddressesOf(ids);
  Py_DECREF(ids);
  std::sort(out.begin(), out.end());
  return out;
}

// A kept set whose members all died has no live member, even though new
// objects sit at the members' addresses.
TEST(IdentityTest, KeptSetOfDeadMembersHasNoLiveMember) {
  ASSERT_TRUE(RunTargetCode(R"(
kd_objs = [[i] for i in range(200)]
kd_ids = [id(o) for o in kd_objs]
)"));
  const std::vector<uintptr_t> members = SortedIds("kd_ids");
  ASSERT_FALSE(members.empty());
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept =
      python::WatchedObjects::Watch(members);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(HeapEngine::LiveMembers(**kept).size(), members.size());
  ASSERT_TRUE(RunTargetCode(R"(
kd_set = frozenset(kd_ids)
del kd_objs
kd_new = [[i] for i in range(200)]
kd_reused = sum(1 for o in kd_new if id(o) in kd_set)
)"));
  ASSERT_GE(TargetLong("kd_reused"), 100);
  EXPECT_EQ(HeapEngine::LiveMembers(**kept).size(), 0u);
  ASSERT_TRUE(RunTargetCode("del kd_new, kd_set, kd_ids"));
}

// Key offsets given by the caller (read with the members' types, as
// glue's ClassifyKinds does) watch exactly as the offsets Watch reads
// itself: they equal each object's pre-header rule, and a member that died
// and whose address holds a new object is told apart, for objects with a
// gc header, a managed dict, both, or neither.
TEST(IdentityTest, GivenKeyOffsetsWatchAsReadOnes) {
  ASSERT_TRUE(RunTargetCode(R"(
class KoObj:
    def __init__(self, v):
        self.v = v
ko_objs = ([[i] for i in range(150)] + [KoObj(i) for i in range(150)] +
           [float(i) + 0.5 for i in range(150)] + [(i, 'k') for i in range(150)])
ko_ids = [id(o) for o in ko_objs]
)"));
  const std::vector<uintptr_t> members = SortedIds("ko_ids");
  ASSERT_EQ(members.size(), 600u);
  std::vector<uint8_t> offsets;
  size_t with_pre_header = 0;
  for (uintptr_t a : members) {
    PyObject* obj = reinterpret_cast<PyObject*>(a);
    offsets.push_back(python::WatchedObjects::KeyOffset(Py_TYPE(obj)));
    with_pre_header += offsets.back() > 0 ? 1 : 0;
#if PY_VERSION_HEX < 0x030D0000
    // Where each object's memory block starts, from CPython's layouts (not
    // through the rule under test): lists and tuples carry a gc header,
    // instances of a plain class also their managed dict (and, on 3.12,
    // weakref) pointers, floats nothing.
    const size_t gc = 2 * sizeof(uintptr_t);  // PyGC_Head: next, prev
    const size_t expected = PyList_CheckExact(obj) || PyTuple_CheckExact(obj)
                                ? gc
                            : PyFloat_CheckExact(obj) ? 0
                                                      : gc + 2 * sizeof(void*);
    EXPECT_EQ(offsets.back(), expected) << Py_TYPE(obj)->tp_name;
#endif
  }
  // Lists, instances and tuples have a gc header before them on 3.11 and
  // 3.12; on 3.13 keys are the objects themselves.
  EXPECT_EQ(with_pre_header, PY_VERSION_HEX >= 0x030D0000 ? 0u : 450u);
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept =
      python::WatchedObjects::Watch(members, offsets);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(HeapEngine::LiveMembers(**kept).size(), members.size());
  // Every other member dies; new objects of the same kinds are made until
  // most dead addresses hold one.
  ASSERT_TRUE(RunTargetCode(R"(
ko_alive = ko_objs[1::2]
ko_dead = frozenset(ko_ids[0::2])
del ko_objs
ko_new = []
for r in range(40):
    ko_new += ([[i] for i in range(75)] + [KoObj(i) for i in range(75)] +
               [float(i) + 0.25 for i in range(75)] +
               [(i, 'n') for i in range(75)])
    if sum(1 for o in ko_new if id(o) in ko_dead) >= 200:
        break
ko_reused = sum(1 for o in ko_new if id(o) in ko_dead)
)"));
  ASSERT_GE(TargetLong("ko_reused"), 200);
  std::vector<uintptr_t> alive = SortedIds("[id(o) for o in ko_alive]");
  EXPECT_EQ(HeapEngine::LiveMembers(**kept).ToVector(), alive);
  ASSERT_TRUE(RunTargetCode("del ko_alive, ko_dead, ko_new, ko_ids"));
}

// Keys that do not ascend with the members' addresses (a key is the
// address less the pre-header; a static object's is computed as if it had
// one, so a key can pass the keys of the members just below it) are put
// in order before they go into the table: every member is then found
// alive, and releasing the watch leaves no key behind. The offsets are
// made up here so that about a quarter of the members' keys pass one or two
// keys below them (the keys then point inside the floats before them,
// where no block starts, so no death is ever counted for them).
TEST(IdentityTest, KeysOutOfAddressOrderAreWatched) {
  ASSERT_TRUE(
      RunTargetCode("ko_floats = [float(i) + 0.75 for i in range(2000)]\n"
                    "ko_float_ids = [id(o) for o in ko_floats]\n"));
  const std::vector<uintptr_t> members = SortedIds("ko_float_ids");
  ASSERT_EQ(members.size(), 2000u);
  std::vector<uint8_t> offsets(members.size(), 0);
  size_t crossed = 0;
  for (size_t i = 2; i < members.size(); ++i) {
    if (offsets[i - 1] != 0 || offsets[i - 2] != 0) continue;
    const size_t back = i % 4 == 3 ? 2 : 1;  // pass two keys, or one
    const uintptr_t gap = members[i] - members[i - back] + 8;
    if (i % 2 == 0 || gap > 255) continue;
    offsets[i] = static_cast<uint8_t>(gap);
    ++crossed;
  }
  ASSERT_GT(crossed, 400u);
  {
    absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept =
        python::WatchedObjects::Watch(members, offsets);
    ASSERT_TRUE(kept.ok()) << kept.status();
    EXPECT_EQ(HeapEngine::LiveMembers(**kept).ToVector(), members);
    // A second watch of the same members merges into the same keys.
    absl::StatusOr<std::shared_ptr<python::WatchedObjects>> again =
        python::WatchedObjects::Watch(members, offsets);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(HeapEngine::LiveMembers(**again).ToVector(), members);
    EXPECT_EQ(HeapEngine::LiveMembers(**kept).ToVector(), members);
  }
  python::FlushDeathWatch();
  EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, 0u)
      << "a released watch left keys behind";
  ASSERT_TRUE(RunTargetCode("del ko_floats, ko_float_ids"));
}

// More watched deaths than the hooks log before counting them themselves
// (16 K): every death is counted, and no survivor is taken for dead.
TEST(IdentityTest, ManyDeathsAreCountedByTheHooks) {
  ASSERT_TRUE(RunTargetCode(R"(
md_objs = [[i] for i in range(60000)]
)"));
  std::vector<uintptr_t> all = SortedIds("[id(o) for o in md_objs]");
  ASSERT_EQ(all.size(), 60000u);
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept =
      python::WatchedObjects::Watch(all);
  ASSERT_TRUE(kept.ok()) << kept.status();
  const uint64_t before = python::DeathWatchEpoch();
  ASSERT_TRUE(RunTargetCode(R"(
md_alive = md_objs[1::2]
del md_objs
md_new = [[i] for i in range(30000)]
)"));
  EXPECT_GE(python::DeathWatchEpoch() - before, 30000u);
  std::vector<uintptr_t> alive = SortedIds("[id(o) for o in md_alive]");
  ObjectSet live = HeapEngine::LiveMembers(**kept);
  EXPECT_EQ(live.ToVector(), alive);
  ASSERT_TRUE(RunTargetCode("del md_alive, md_new"));
}

// A key logged by the hooks before it is watched (a released key's filter
// bit stays until the filter is rebuilt) does not count against the watch
// that takes it later: new objects at the addresses of a released watch's
// dead members are the same objects to a new watch.
TEST(IdentityTest, DeathsBeforeAWatchDoNotCountAgainstIt) {
  ASSERT_TRUE(RunTargetCode(R"(
bw_big = [(i, 'x') for i in range(5000)]
bw_old = [[i] for i in range(1000)]
)"));
  // The big watch keeps the hooks installed and the released keys' filter
  // bits in place (fewer stale bits than keys watched).
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> big =
      python::WatchedObjects::Watch(SortedIds("[id(o) for o in bw_big]"));
  ASSERT_TRUE(big.ok()) << big.status();
  {
    absl::StatusOr<std::shared_ptr<python::WatchedObjects>> old =
        python::WatchedObjects::Watch(SortedIds("[id(o) for o in bw_old]"));
    ASSERT_TRUE(old.ok()) << old.status();
  }
  python::FlushDeathWatch();
  const uint64_t before = python::DeathWatchEpoch();
  ASSERT_TRUE(RunTargetCode(R"(
bw_old_ids = frozenset(id(o) for o in bw_old)
del bw_old
bw_new = [[i] for i in range(1000)]
bw_reused = sum(1 for o in bw_new if id(o) in bw_old_ids)
)"));
  ASSERT_GE(TargetLong("bw_reused"), 500);
  // The premise: the hooks saw the old members die (their bits stayed).
  ASSERT_GE(python::DeathWatchEpoch() - before, 500u);
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> now =
      python::WatchedObjects::Watch(SortedIds("[id(o) for o in bw_new]"));
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(HeapEngine::LiveMembers(**now).size(), 1000u);
  EXPECT_EQ(HeapEngine::LiveMembers(**big).size(), 5000u);
  ASSERT_TRUE(RunTargetCode("del bw_big, bw_new, bw_old_ids"));
}

// A watch of a set overlapping one already watched joins the shared keys'
// entries and adds the others between them (the merge moves old keys up
// only until the last new key below them is placed, then takes the rest
// in place). Every member of both is watched exactly: deaths reach each
// watch once, and releasing both leaves no key behind.
TEST(IdentityTest, AWatchOverlappingAnotherSharesItsKeys) {
  ASSERT_TRUE(RunTargetCode(R"(
ov_a = [[i] for i in range(2000)]
ov_b = [[i] for i in range(2000)]
)"));
  const std::vector<uintptr_t> half =
      SortedIds("[id(o) for o in ov_a[::2] + ov_b[::2]]");
  const std::vector<uintptr_t> all = SortedIds("[id(o) for o in ov_a + ov_b]");
  const std::vector<uintptr_t> b_half = SortedIds("[id(o) for o in ov_b[::2]]");
  const std::vector<uintptr_t> b_all = SortedIds("[id(o) for o in ov_b]");
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> first =
      python::WatchedObjects::Watch(half);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> second =
      python::WatchedObjects::Watch(all);
  ASSERT_TRUE(second.ok()) << second.status();
  // Watching the same members again moves nothing and changes nothing.
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> again =
      python::WatchedObjects::Watch(all);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, all.size());
  EXPECT_EQ(HeapEngine::LiveMembers(**first).ToVector(), half);
  EXPECT_EQ(HeapEngine::LiveMembers(**second).ToVector(), all);
  ASSERT_TRUE(RunTargetCode("del ov_a"));
  EXPECT_EQ(HeapEngine::LiveMembers(**first).ToVector(), b_half);
  EXPECT_EQ(HeapEngine::LiveMembers(**second).ToVector(), b_all);
  EXPECT_EQ(HeapEngine::LiveMembers(**again).ToVector(), b_all);
  first->reset();
  again->reset();
  python::FlushDeathWatch();
  EXPECT_EQ(HeapEngine::LiveMembers(**second).ToVector(), b_all);
  second->reset();
  python::FlushDeathWatch();
  EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, 0u)
      << "a released watch left keys behind";
  ASSERT_TRUE(RunTargetCode("del ov_b"));
}

// Static objects have no memory block: their key is computed as if they
// had the pre-header their type says, and two can share a key (3.12 lays
// the static _PyNotImplemented_Type out 16 bytes after the 16-byte
// NotImplemented, and a type's key is 16 bytes below it). Watched twice,
// such sets must neither corrupt the table (a merge wrote before it:
// free() aborted in hp tests on 3.12) nor lose a member or leave one.
TEST(IdentityTest, MembersSharingAKeyAreWatchedTwice) {
  std::vector<uintptr_t> statics = SortedIds(
      "[id(o) for o in (NotImplemented, type(NotImplemented), None, "
      "type(None), Ellipsis, type(Ellipsis), int, bool, True, False)]");
  ASSERT_EQ(statics.size(), 10u);
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> first =
      python::WatchedObjects::Watch(statics);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> second =
      python::WatchedObjects::Watch(statics);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(HeapEngine::LiveMembers(**first).ToVector(), statics);
  EXPECT_EQ(HeapEngine::LiveMembers(**second).ToVector(), statics);
  // Releasing one watch leaves the shared key in the table once; a watch
  // that then holds both members again is the one that used to write
  // before the table.
  first->reset();
  python::FlushDeathWatch();
  EXPECT_EQ(HeapEngine::LiveMembers(**second).ToVector(), statics);
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> third =
      python::WatchedObjects::Watch(statics);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(HeapEngine::LiveMembers(**third).ToVector(), statics);
  second->reset();
  third->reset();
  python::FlushDeathWatch();
  EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, 0u)
      << "a released watch left keys behind";
}

// tracemalloc hooks the same places (the OBJ allocator on 3.11/3.12, the
// ref tracer on 3.13): started before the watch it keeps tracing through
// ours, the watch still sees every death, and both come off cleanly.
TEST(IdentityTest, TracemallocStartedBeforeTheWatch) {
  ASSERT_TRUE(RunTargetCode(R"(
import tracemalloc
tracemalloc.start()
tm_old = [[i] for i in range(300)]
tm_old_ids = frozenset(id(o) for o in tm_old)
)"));
  {
    HeapEngine engine(testing::MainThreadStates());
    ASSERT_TRUE(engine.SetRef().ok());
    ASSERT_TRUE(RunTargetCode(R"(
del tm_old
tm_new = [[i] for i in range(300)]
tm_reused = sum(1 for o in tm_new if id(o) in tm_old_ids)
tm_traced = tracemalloc.get_traced_memory()[0]
)"));
    ASSERT_GE(TargetLong("tm_reused"), 100);
    absl::StatusOr<ObjectSet> since = engine.SinceRef();
    ASSERT_TRUE(since.ok()) << since.status();
    EXPECT_EQ(TargetLong("sum(1 for o in tm_new if id(o) in tm_old_ids)"),
              TargetLong("tm_reused"));
    PyObject* ids = EvalTarget("[id(o) for o in tm_new]");
    ASSERT_NE(ids, nullptr);
    int missing = 0;
    for (uintptr_t a : testing::AddressesOf(ids)) {
      missing += since->contains(a) ? 0 : 1;
    }
    Py_DECREF(ids);
    EXPECT_EQ(missing, 0);
    EXPECT_TRUE(python::GetDeathWatchStats().intact);
  }
  python::FlushDeathWatch();
  EXPECT_FALSE(python::GetDeathWatchStats().installed);
  // tracemalloc still traces, then stops and starts again normally.
  EXPECT_GT(TargetLong("tracemalloc.get_traced_memory()[0]"), 0);
  ASSERT_TRUE(RunTargetCode(R"(
tm_x = [object() for i in range(100)]
assert tracemalloc.get_object_traceback(tm_x[-1]) is not None
tracemalloc.stop()
tracemalloc.start()
tm_y = [object() for i in range(10)]
assert tracemalloc.get_object_traceback(tm_y[-1]) is not None
tracemalloc.stop()
del tm_new, tm_old_ids, tm_x, tm_y
)"));
}

// Freeing a deep chain of tuples, lists or dicts while the death watch is
// armed: CPython frees such a chain through the trashcan, which the
// wrapped tp_dealloc of 3.11/3.12 once disabled (every level recursed on
// the C stack until it overflowed: SIGSEGV in CPython's test suite run
// under annex). Every member of a watched chain is still seen to die, also
// those whose dealloc the trashcan deferred, and a chain freed by the gc
// (a cycle holding it) goes the same way.
struct Chain {
  const char* name;
  const char* link;  // an expression of `x` making the next level
  const char* down;  // an expression of `x` giving the level below
  int depth;
  // When set, the plain release runs on a thread with this stack size (a
  // Python expression): the wrapped deallocs of 3.11/3.12 open the
  // trashcan only near the end of the thread's stack (death_watch.cc), so
  // a small stack must still not overflow.
  const char* stack = nullptr;
};

void PrintTo(const Chain& chain, std::ostream* os) { *os << chain.name; }

class DeepChainTest : public ::testing::TestWithParam<Chain> {};

TEST_P(DeepChainTest, FreedWhileWatched) {
  const Chain& chain = GetParam();
  ASSERT_TRUE(RunTargetCode(absl::StrCat(R"(
class DcList(list):
    pass
class DcCycle:
    pass
def dc_link(x):
    return )",
                                         chain.link, R"(
def dc_down(x):
    return )",
                                         chain.down, R"(
def dc_build():
    x = None
    for _ in range()",
                                         chain.depth, R"():
        x = dc_link(x)
    return x
dc_x = dc_build()
dc_ids = []
dc_y = dc_x
while dc_y is not None:
    dc_ids.append(id(dc_y))
    dc_y = dc_down(dc_y)
del dc_y
)")));
  const std::vector<uintptr_t> members = SortedIds("dc_ids");
  ASSERT_EQ(members.size(), static_cast<size_t>(chain.depth));
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept =
      python::WatchedObjects::Watch(members);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(HeapEngine::LiveMembers(**kept).size(), members.size());
  // Plain release: the last reference goes, the chain unwinds.
  if (chain.stack == nullptr) {
    ASSERT_TRUE(RunTargetCode("del dc_x"));
  } else {
    ASSERT_TRUE(RunTargetCode(absl::StrCat(R"(
import threading
def dc_free():
    global dc_x
    del dc_x
threading.stack_size()",
                                           chain.stack, R"()
try:
    dc_t = threading.Thread(target=dc_free)
    dc_t.start()
    dc_t.join()
finally:
    threading.stack_size(0)
del dc_t, dc_free
)")));
    ASSERT_EQ(TargetLong("'dc_x' in globals()"), 0);
  }
  EXPECT_EQ(HeapEngine::LiveMembers(**kept).size(), 0u) << chain.name;
  // Through the gc: a cycle holds a new chain, the collection frees both.
  ASSERT_TRUE(RunTargetCode(R"(
import gc
dc_c = DcCycle()
dc_c.me = dc_c
dc_c.chain = dc_build()
del dc_c
dc_freed = gc.collect()
)"));
  EXPECT_GE(TargetLong("dc_freed"), 2);
  kept->reset();
  python::FlushDeathWatch();
  ASSERT_TRUE(RunTargetCode(
      "del dc_ids, dc_freed, DcList, DcCycle, dc_link, dc_down, dc_build"));
}

// Deep enough to overflow an 8 MiB stack without the trashcan (about 130
// thousand levels did with lists on 3.11).
INSTANTIATE_TEST_SUITE_P(
    TrashcanTypes, DeepChainTest,
    ::testing::Values(
        Chain{"list", "[x]", "x[0]", 400000},
        Chain{"tuple", "(x,)", "x[0]", 400000},
        Chain{"dict", "{'k': x}", "x['k']", 300000},
        // subtype_dealloc's trashcan, then the wrapped list dealloc.
        Chain{"list_subclass", "DcList([x])", "x[0]", 300000},
        Chain{"mixed", "[{'k': (x,)}]", "x[0]['k'][0]", 150000},
        // 1 MiB: the last 512 KiB take the trashcan; 256 KiB: all of it.
        Chain{"list_1mib_stack", "[x]", "x[0]", 300000, "1 << 20"},
        Chain{"tuple_256kib_stack", "(x,)", "x[0]", 300000, "256 << 10"}),
    [](const ::testing::TestParamInfo<Chain>& info) {
      return std::string(info.param.name);
    });

// The hooks are there only while something is watched.
TEST(IdentityTest, HooksOnlyWhileWatched) {
  python::FlushDeathWatch();
  ASSERT_FALSE(python::GetDeathWatchStats().installed)
      << "a watch from an earlier test is still held";
#if PY_VERSION_HEX >= 0x030D0000
  // (3.13's tracemalloc.stop() leaves its own tracer set: compare with
  // whatever was there before.)
  void* data_before = nullptr;
  PyRefTracer before = PyRefTracer_GetTracer(&data_before);
#endif
  {
    HeapEngine engine(testing::MainThreadStates());
    ASSERT_TRUE(engine.SetRef().ok());
    python::DeathWatchStats on = python::GetDeathWatchStats();
    EXPECT_TRUE(on.installed);
    EXPECT_GT(on.watched_blocks, 100u);
    EXPECT_TRUE(on.intact);
    engine.ClearRef();
    python::FlushDeathWatch();
    EXPECT_FALSE(python::GetDeathWatchStats().installed);
    EXPECT_EQ(python::GetDeathWatchStats().watched_blocks, 0u);
  }
#if PY_VERSION_HEX < 0x030D0000
  EXPECT_NE(PyFloat_Type.tp_dealloc, nullptr);
  PyMemAllocatorEx now;
  PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &now);
  PyObject* f = PyFloat_FromDouble(1.5);  // allocations still work
  ASSERT_NE(f, nullptr);
  Py_DECREF(f);
#else
  void* data = nullptr;
  EXPECT_EQ(PyRefTracer_GetTracer(&data), before);
  EXPECT_EQ(data, data_before);
#endif
}

}  // namespace
}  // namespace annex::heap
