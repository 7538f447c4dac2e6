// The reachable set equals a plain BFS with gc.get_referents run inside the
// target from the same roots, on several workloads, with the same total size.
#include <Python.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/roots.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// The oracle: BFS over gc.get_referents. Live frames (the roots from thread
// stacks) additionally contribute their code, globals, builtins and the
// values of their locals, which is what the engine reads from them; the
// f_locals dict that 3.11/3.12 synthesize for a function frame is the
// oracle's own creation and is left out (its values are not). Dict keys are
// added too: dict_traverse skips the keys of str-keyed dicts, the engine
// does not (docs/heap-engine.md).
constexpr char kOracle[] = R"(
import gc, sys, types
def _annex_oracle(roots):
    seen = {}
    stack = []
    def add(o):
        if id(o) not in seen:
            seen[id(o)] = o
            stack.append(o)
    for r in roots:
        add(r)
        if isinstance(r, types.FrameType):
            add(r.f_code)
            add(r.f_globals)
            add(r.f_builtins)
            loc = r.f_locals
            if r.f_code.co_flags & 1:   # CO_OPTIMIZED: a synthesized mapping
                for v in loc.values():
                    add(v)
            else:
                add(loc)
    while stack:
        o = stack.pop()
        for r in gc.get_referents(o):
            add(r)
        if isinstance(o, dict):
            for k in dict.keys(o):
                add(k)
    return list(seen), sum(sys.getsizeof(o) for o in seen.values())
)";

struct Comparison {
  size_t engine = 0, oracle = 0;
  std::vector<std::string> only_engine, only_oracle;
  uint64_t engine_bytes = 0, oracle_bytes = 0;
};

std::string Describe(uintptr_t addr) {
  PyObject* o = reinterpret_cast<PyObject*>(addr);
  std::string s = Py_TYPE(o)->tp_name;
  PyObject* r = PyObject_Repr(o);
  if (r != nullptr) {
    const char* u = PyUnicode_AsUTF8(r);
    if (u != nullptr) s += std::string(" ") + std::string(u).substr(0, 80);
    Py_DECREF(r);
  }
  PyErr_Clear();
  return s;
}

// GIL held, target current, no Python frames on this thread.
Comparison Compare() {
  Comparison c;
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  EXPECT_TRUE(heap.ok()) << heap.status();
  if (!heap.ok()) return c;
  c.engine = heap->objects.size();
  c.engine_bytes = heap->total_bytes;
  PyObject* root_list = PyList_New(0);
  {
    absl::StatusOr<RootList> roots = CollectRoots({});
    EXPECT_TRUE(roots.ok());
    for (size_t i = 0; i < roots->size(); ++i) {
      PyList_Append(root_list, roots->object(i));
    }
  }
  PyObject* oracle = EvalTarget("_annex_oracle");
  PyObject* res = PyObject_CallOneArg(oracle, root_list);
  Py_DECREF(oracle);
  Py_DECREF(root_list);
  EXPECT_NE(res, nullptr);
  if (res == nullptr) {
    PyErr_Print();
    return c;
  }
  std::vector<uintptr_t> ids = testing::AddressesOf(PyTuple_GetItem(res, 0));
  c.oracle_bytes = PyLong_AsUnsignedLongLong(PyTuple_GetItem(res, 1));
  c.oracle = ids.size();
  ObjectSet oracle_set = ObjectSet::FromUnsorted(ids);
  for (uintptr_t a : heap->objects - oracle_set) {
    if (c.only_engine.size() < 10) c.only_engine.push_back(Describe(a));
  }
  for (uintptr_t a : oracle_set - heap->objects) {
    if (c.only_oracle.size() < 10) c.only_oracle.push_back(Describe(a));
  }
  Py_DECREF(res);
  return c;
}

void ExpectMatch(const char* workload) {
  Comparison c = Compare();
  EXPECT_EQ(c.engine, c.oracle) << workload;
  EXPECT_EQ(c.engine_bytes, c.oracle_bytes) << workload;
  for (const std::string& s : c.only_engine)
    ADD_FAILURE() << workload << ": only engine: " << s;
  for (const std::string& s : c.only_oracle)
    ADD_FAILURE() << workload << ": only oracle: " << s;
  EXPECT_GT(c.engine, 1000u);
}

class OracleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kOracle)); }
};

TEST_F(OracleTest, EmptyishInterpreter) { ExpectMatch("baseline"); }

TEST_F(OracleTest, DictsOfStrAndInt) {
  ASSERT_TRUE(
      RunTargetCode("w_dicts = [{str(i) + 'k': i * 1000003, 'x': str(i) * 3} "
                    "for i in range(2000)]"));
  ExpectMatch("dicts");
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
  ExpectMatch("instances");
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
  ExpectMatch("generators");
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
  ExpectMatch("threads");
  ASSERT_TRUE(RunTargetCode(R"(
w_stop.append(1)
for t in w_threads:
    t.join()
sys.setswitchinterval(0.005)
)"));
}

}  // namespace
}  // namespace annex::heap
