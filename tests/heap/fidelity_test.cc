// Heap fidelity (issue 12): what only non-GC containers hold is in heap():
// code objects' constants and names, static builtin types' dicts and MROs;
// a cycle that only a C reference keeps is in heapu(); a constant shared by
// two functions is retained by neither alone.
#include <Python.h>

#include <algorithm>
#include <cstdint>

#include "gtest/gtest.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/retention.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

uintptr_t TargetAddress(const std::string& expr) {
  PyObject* v = EvalTarget(expr);
  EXPECT_NE(v, nullptr) << expr;
  const uintptr_t a = v == nullptr ? 0 : PyLong_AsUnsignedLongLong(v);
  Py_XDECREF(v);
  return a;
}

TEST(FidelityTest, CodeConstantsNestedCodeAndLambdaConstantsAreInHeap) {
  ASSERT_TRUE(RunTargetCode(R"(
def fid_outer():
    def fid_inner():
        return ('fid-inner-const', 1234567890123)
    return fid_inner
fid_lambda = lambda: ('fid-lambda-const', 9876543210987)
fid_ids = {
    'consts': id(fid_outer.__code__.co_consts),
    'names': id(fid_lambda.__code__.co_names),
    'inner_code': id([c for c in fid_outer.__code__.co_consts
                      if type(c) is type(fid_outer.__code__)][0]),
    'inner_const': id([c for c in fid_outer.__code__.co_consts
                       if type(c) is type(fid_outer.__code__)][0]
                      .co_consts[1]),
    'lambda_consts': id(fid_lambda.__code__.co_consts),
    'lambda_const': id(fid_lambda.__code__.co_consts[1]),
    'linetable': id(fid_outer.__code__.co_linetable),
}
)"));
  // The constants really are the tuples (the compiler folded them).
  EXPECT_EQ(annex::testing::TargetStr("repr(fid_lambda.__code__.co_consts[1])"),
            "('fid-lambda-const', 9876543210987)");
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  ASSERT_TRUE(heap.ok()) << heap.status();
  for (const char* key : {"consts", "names", "inner_code", "inner_const",
                          "lambda_consts", "lambda_const", "linetable"}) {
    EXPECT_TRUE(heap->objects.contains(
        TargetAddress(std::string("fid_ids['") + key + "']")))
        << key;
  }
}

// An instance whose attributes are inline and whose __dict__ was made
// (vars(obj)) holds that dict; on 3.13 its tp_traverse visits only the
// inline values while they stay valid, and the dict was in neither heap()
// nor heapu(). Nothing else refers to the dict here.
TEST(FidelityTest, DictMadeForAnInstanceWithInlineValuesIsInHeap) {
  ASSERT_TRUE(RunTargetCode(R"(
class FidInline:
    def __init__(self):
        self.a = 'fid-inline-a'
        self.b = 12345678901
fid_inline = FidInline()
fid_inline_dict = id(vars(fid_inline))
fid_inline_value = id(fid_inline.b)
)"));
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  ASSERT_TRUE(heap.ok()) << heap.status();
  EXPECT_TRUE(heap->objects.contains(TargetAddress("fid_inline_dict")));
  EXPECT_TRUE(heap->objects.contains(TargetAddress("fid_inline_value")));
  absl::StatusOr<ObjectSet> unreachable = engine.Unreachable();
  ASSERT_TRUE(unreachable.ok()) << unreachable.status();
  EXPECT_FALSE(unreachable->contains(TargetAddress("fid_inline_dict")));
  ASSERT_TRUE(RunTargetCode("del fid_inline, FidInline\n"));
}

TEST(FidelityTest, SlotWrapperOfStaticTypeIsInHeapNotInHeapu) {
  ASSERT_TRUE(RunTargetCode(R"(
def fid_static_fn():
    return ('fid-static-fn', 3333333333333)
fid_static_ids = [id(int.__dict__['__add__']), id(str.__dict__['join']),
                  id(int.__mro__), id(str.__bases__)]
)"));
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
  ASSERT_TRUE(heap.ok() && heapu.ok());
  for (int i = 0; i < 4; ++i) {
    const uintptr_t a =
        TargetAddress("fid_static_ids[" + std::to_string(i) + "]");
    EXPECT_TRUE(heap->objects.contains(a)) << i;
    EXPECT_FALSE(heapu->contains(a)) << i;
  }
  // The dict itself (on 3.12+ held in the interpreter's state).
  EXPECT_TRUE(heap->objects.contains(
      reinterpret_cast<uintptr_t>(python::TypeDictBorrowed(&PyLong_Type))));
  EXPECT_TRUE((*heapu & heap->objects).empty());
  // The new edges are named as Python spells them.
  PyObject* int_type = reinterpret_cast<PyObject*>(&PyLong_Type);
  PyObject* int_dict = python::TypeDictBorrowed(&PyLong_Type);
  ASSERT_NE(int_dict, nullptr);
  EXPECT_EQ(DescribeEdge(int_type, int_dict).text, ".__dict__");
  PyObject* add = PyDict_GetItemString(int_dict, "__add__");  // borrowed
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(DescribeEdge(int_dict, add).text, "['__add__']");
  EXPECT_EQ(
      DescribeEdge(int_type, reinterpret_cast<PyObject*>(PyLong_Type.tp_mro))
          .text,
      ".__mro__");
  PyObject* code = EvalTarget("fid_static_fn.__code__");
  ASSERT_NE(code, nullptr);
  EXPECT_EQ(
      DescribeEdge(code, reinterpret_cast<PyCodeObject*>(code)->co_consts).text,
      ".co_consts");
  Py_DECREF(code);
}

TEST(FidelityTest, CycleKeptOnlyByACReferenceIsInHeapu) {
  ASSERT_TRUE(RunTargetCode(R"(
import gc
gc.disable()
fid_cycle = ['fid-cycle']
fid_cycle.append(fid_cycle)
)"));
  PyObject* held = EvalTarget("fid_cycle");  // the C reference
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(RunTargetCode("del fid_cycle"));
  const uintptr_t a = reinterpret_cast<uintptr_t>(held);
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  absl::StatusOr<ObjectSet> heapu = engine.Unreachable();
  ASSERT_TRUE(heap.ok() && heapu.ok());
  EXPECT_FALSE(heap->objects.contains(a));
  EXPECT_TRUE(heapu->contains(a));
  Py_DECREF(held);
  ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()"));
  heapu = engine.Unreachable();
  ASSERT_TRUE(heapu.ok());
  EXPECT_FALSE(heapu->contains(a));
}

TEST(FidelityTest, SharedConstantIsRetainedByNeitherHolderAlone) {
  // One compilation unit: the compiler merges equal constants, so both code
  // objects hold the same tuple object.
  ASSERT_TRUE(RunTargetCode(R"(
exec(compile('''
def fid_f():
    return ('fid-shared', 55555555555555)
def fid_g():
    t = ('fid-shared', 55555555555555)
    return [t]
''', 'fid_shared', 'exec'))
fid_t = [c for c in fid_f.__code__.co_consts if type(c) is tuple][0]
fid_shared_ok = any(c is fid_t for c in fid_g.__code__.co_consts)
fid_t_id = id(fid_t)
del fid_t
)"));
  ASSERT_EQ(annex::testing::TargetLong("fid_shared_ok"), 1);
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapGraph> g = engine.Graph();
  ASSERT_TRUE(g.ok()) << g.status();
  const int64_t t = g->Find(TargetAddress("fid_t_id"));
  const int64_t f = g->Find(testing::MainGlobalId("fid_f"));
  const int64_t gg = g->Find(testing::MainGlobalId("fid_g"));
  ASSERT_GE(t, 0) << "the shared constant is in the graph";
  ASSERT_GE(f, 0);
  ASSERT_GE(gg, 0);
  const uint32_t tn = static_cast<uint32_t>(t);
  const uint32_t fn = static_cast<uint32_t>(f);
  const uint32_t gn = static_cast<uint32_t>(gg);
  DominatorTree dom = DominatorTree::Build(*g);
  absl::StatusOr<NodeSet> by_f = Dominated(*g, dom, {fn});
  absl::StatusOr<NodeSet> by_g = Dominated(*g, dom, {gn});
  absl::StatusOr<NodeSet> by_both =
      Dominated(*g, dom, {std::min(fn, gn), std::max(fn, gn)});
  ASSERT_TRUE(by_f.ok() && by_g.ok() && by_both.ok());
  auto has = [](const NodeSet& s, uint32_t v) {
    return std::find(s.begin(), s.end(), v) != s.end();
  };
  EXPECT_FALSE(has(*by_f, tn));
  EXPECT_FALSE(has(*by_g, tn));
  EXPECT_TRUE(has(*by_both, tn));
  // domisize of f: its own dominated objects, the constant not among them.
  uint64_t expected = 0;
  for (uint32_t v : *by_f) expected += g->sizes[v];
  absl::StatusOr<uint64_t> domisize = RetainedSize(*g, {fn});
  ASSERT_TRUE(domisize.ok());
  EXPECT_EQ(*domisize, expected);
  // The code object and its own constants tuple are f's alone.
  EXPECT_GT(by_f->size(), 2u);
}

}  // namespace
}  // namespace annex::heap
