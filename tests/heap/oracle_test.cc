// The reachable set equals a plain BFS with gc.get_referents run inside the
// target from the same roots, on several workloads, with the same total size.
#include <Python.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/roots.h"
#include "tests/heap/oracle_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

class OracleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::InstallOracle()); }
};

TEST_F(OracleTest, EmptyishInterpreter) { testing::ExpectMatch("baseline"); }

TEST_F(OracleTest, DictsOfStrAndInt) {
  ASSERT_TRUE(
      RunTargetCode("w_dicts = [{str(i) + 'k': i * 1000003, 'x': str(i) * 3} "
                    "for i in range(2000)]"));
  testing::ExpectMatch("dicts");
}

TEST_F(OracleTest, InstancesWithCyclesSlotsAndClosures) {
  ASSERT_TRUE(RunTargetCode(R"(
class WNode:
    def __init__(self, v):
        self.v = v
        self.peer = None
class WSlots:
    __slots__ = ('a', 'b', '__weakref__')
    def __init__(self, a, b):
        self.a, self.b = a, b
def w_make_closure(n):
    cell = [n]
    def inner():
        return cell
    return inner
w_nodes = [WNode(i) for i in range(500)]
for a, b in zip(w_nodes, w_nodes[1:] + w_nodes[:1]):
    a.peer = b
w_nodes[3].__dict__['materialized'] = True
w_slots = [WSlots(i, (i, str(i))) for i in range(500)]
w_closures = [w_make_closure(i) for i in range(200)]
)"));
  testing::ExpectMatch("instances");
}

TEST_F(OracleTest, GeneratorsAndNestedContainers) {
  ASSERT_TRUE(RunTargetCode(R"(
def w_gen(n):
    local = ['gen-local', n]
    yield local
    yield n
w_gens = [w_gen(i) for i in range(100)]
for g in w_gens[:50]:
    next(g)
w_nested = {'a': [(1, 2, frozenset({3, 4})), {'b': [{5, 6, (7, 8)}, [8]]}], 'c': bytearray(b'zz')}
import collections
w_deque = collections.deque([[i] for i in range(100)])
w_ordered = collections.OrderedDict((str(i), [i]) for i in range(100))
)"));
  testing::ExpectMatch("generators");
}

TEST_F(OracleTest, ThreadsWithLiveFrames) {
  ASSERT_TRUE(RunTargetCode(R"(
import threading, time, sys
sys.setswitchinterval(100)  # the main thread keeps the GIL between walks
w_stop = []
w_ready = threading.Barrier(4)
def w_worker(stop, ready, n):
    payload = {'thread-payload': [n] * 10}
    ready.wait()
    while not stop:
        time.sleep(0.001)
w_threads = [threading.Thread(target=w_worker, args=(w_stop, w_ready, i)) for i in range(3)]
for t in w_threads:
    t.start()
w_ready.wait()
time.sleep(0.05)
)"));
  testing::ExpectMatch("threads");
  ASSERT_TRUE(RunTargetCode(R"(
w_stop.append(1)
for t in w_threads:
    t.join()
sys.setswitchinterval(0.005)
)"));
}

}  // namespace
}  // namespace annex::heap
