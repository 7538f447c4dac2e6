// ClassifyObjects' Clodo kinds: every exact dict is named by the type of
// the object that owns it as its attribute dict, checked against what the
// target itself says (id(obj.__dict__), ...) and against DictOwners over
// the whole heap, for the whole walked set and for subsets whose owners lie
// outside them, with owners that are many (placed through an address index)
// or few (placed by binary search).
#include <Python.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/guards.h"
#include "tests/testing/python_main.h"

namespace annex::glue {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// The walked heap. Where: main thread, GIL held, the single (target)
// interpreter current; the addresses stay valid while the GIL stays held.
absl::StatusOr<heap::HeapGraph> Walk() {
  heap::HeapEngine engine(python::ThreadStates{PyThreadState_Get(), nullptr});
  return engine.Graph();
}

// {address: expected Clodo name} computed in the target. GIL held.
absl::flat_hash_map<uintptr_t, std::string> Expected(const std::string& expr) {
  absl::flat_hash_map<uintptr_t, std::string> out;
  PyObject* d = EvalTarget(expr);
  EXPECT_NE(d, nullptr);
  if (d == nullptr) return out;
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (PyDict_Next(d, &pos, &k, &v)) {
    out[PyLong_AsUnsignedLongLong(k)] = PyUnicode_AsUTF8(v);
  }
  Py_DECREF(d);
  return out;
}

// What the old algorithm (DictOwners' hash map) names member i.
std::string Reference(
    const TypeNamer& namer, const std::vector<uintptr_t>& set, size_t i,
    const absl::flat_hash_map<uintptr_t, PyTypeObject*>& owners) {
  PyObject* obj = reinterpret_cast<PyObject*>(set[i]);
  if (Py_TYPE(obj) != &PyDict_Type) return namer.Name(Py_TYPE(obj));
  auto it = owners.find(set[i]);
  return it == owners.end() ? std::string(kNoOwnerDict)
                            : "dict of " + namer.Name(it->second);
}

class ClassifyObjectsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(RunTargetCode(R"(
import gc, json
class Owned: pass
class P: pass
class Q: pass
class DictSub(dict): pass
class Slotted:
    __slots__ = ('x',)
owned = [Owned() for _ in range(300)]
for i, o in enumerate(owned):
    # A dict object that holds the attributes on every version (3.13
    # traverses inline values, not a dict vars() built over them).
    o.__dict__ = {'v': i}
plain = [{'k%d' % i: i} for i in range(200)]
p, q = P(), Q()
p.__dict__ = {'a': 1}
q.__dict__ = p.__dict__          # one dict, two owners
sub_holder = Owned()
sub_holder.__dict__ = DictSub(z=1)
slotted = [Slotted() for _ in range(50)]
expected = {id(o.__dict__): 'dict of __main__.Owned' for o in owned}
expected.update({id(d): 'dict (no owner)' for d in plain})
expected[id(p.__dict__)] = 'dict of __main__.%s' % ('P' if id(p) < id(q) else 'Q')
expected[id(sub_holder.__dict__)] = '__main__.DictSub'
expected[id(json.__dict__)] = 'dict of module'
expected[id(gc.get_referents(Owned.__dict__)[0])] = 'dict of type'
expected[id(owned[0])] = '__main__.Owned'
)"));
  }
};

TEST_F(ClassifyObjectsTest, NamesEachDictByItsOwnerAsTheTargetSeesIt) {
  absl::StatusOr<TypeNamer> namer = TypeNamer::Create();
  ASSERT_TRUE(namer.ok()) << namer.status();
  absl::StatusOr<heap::HeapGraph> g = Walk();
  ASSERT_TRUE(g.ok()) << g.status();
  // GIL held since the walk: its objects are alive.
  KindedSet set =
      ClassifyObjects(*namer, g->addresses, g->sizes, &g->addresses);
  ASSERT_EQ(set.clodo.size(), set.count());
  absl::flat_hash_map<uintptr_t, std::string> expected = Expected("expected");
  ASSERT_GT(expected.size(), 500u);
  size_t checked = 0, owned = 0;
  for (size_t i = 0; i < set.count(); ++i) {
    const std::string& name = (*set.kind_names)[set.clodo[i]];
    owned += name == "dict of __main__.Owned";
    auto it = expected.find(set.addresses[i]);
    if (it == expected.end()) continue;
    EXPECT_EQ(name, it->second) << std::hex << set.addresses[i];
    ++checked;
  }
  EXPECT_EQ(checked, expected.size());
  EXPECT_EQ(owned, 300u);
  // The Clodo partition's rows count the same dicts.
  bool row_seen = false;
  for (const KindedSet::Row& r : set.Rows()) {
    if (r.kind == "dict of __main__.Owned") {
      EXPECT_EQ(r.count, 300u);
      row_seen = true;
    }
  }
  EXPECT_TRUE(row_seen);
}

TEST_F(ClassifyObjectsTest, AgreesWithTheOwnerMapOnWholeHeapsAndSubsets) {
  absl::StatusOr<TypeNamer> namer = TypeNamer::Create();
  ASSERT_TRUE(namer.ok()) << namer.status();
  absl::StatusOr<heap::HeapGraph> g = Walk();
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<uintptr_t> copy = g->addresses;  // same members, other vector
  // Owners from a few objects only: the owned dicts found stay under 1/64
  // of the members, so they are placed by binary search, not by an index.
  std::vector<uintptr_t> few;
  for (size_t i = 0; i < g->size(); i += 97) few.push_back(g->addresses[i]);
  for (const char* name : {"p", "q"}) {
    PyObject* o = EvalTarget(name);
    ASSERT_NE(o, nullptr);
    few.push_back(reinterpret_cast<uintptr_t>(o));
    Py_DECREF(o);
  }
  std::sort(few.begin(), few.end());
  few.erase(std::unique(few.begin(), few.end()), few.end());
  ASSERT_LT(DictOwners(few).size(), g->size() / 64);
  // And over the whole heap, enough for the index.
  ASSERT_GT(DictOwners(g->addresses).size(), g->size() / 64);
  std::vector<uintptr_t> odd, even;
  std::vector<uint64_t> odd_sizes, even_sizes;
  for (size_t i = 0; i < g->size(); ++i) {
    (i % 2 ? odd : even).push_back(g->addresses[i]);
    (i % 2 ? odd_sizes : even_sizes).push_back(g->sizes[i]);
  }
  struct Case {
    const char* name;
    const std::vector<uintptr_t>* set;
    const std::vector<uint64_t>* sizes;
    const std::vector<uintptr_t>* scan;
  };
  const Case cases[] = {
      {"whole heap", &g->addresses, &g->sizes, &g->addresses},
      {"whole heap, owners from a copy", &g->addresses, &g->sizes, &copy},
      {"odd members", &odd, &odd_sizes, &g->addresses},
      {"even members", &even, &even_sizes, &g->addresses},
      {"whole heap, few owners", &g->addresses, &g->sizes, &few},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::flat_hash_map<uintptr_t, PyTypeObject*> owners =
        DictOwners(*c.scan);
    KindedSet set = ClassifyObjects(*namer, *c.set, *c.sizes, c.scan);
    ASSERT_EQ(set.addresses.ToVector(), *c.set);
    ASSERT_EQ(set.sizes.ToVector(), *c.sizes);
    size_t mismatches = 0, dicts = 0;
    for (size_t i = 0; i < set.count(); ++i) {
      const std::string want = Reference(*namer, *c.set, i, owners);
      dicts += want.rfind("dict", 0) == 0;
      if ((*set.kind_names)[set.clodo[i]] != want && ++mismatches < 5) {
        ADD_FAILURE() << "member " << i << ": "
                      << (*set.kind_names)[set.clodo[i]] << " != " << want;
      }
      // Type kinds are unchanged by Clodo.
      if ((*set.kind_names)[set.kinds[i]] !=
          namer->Name(Py_TYPE(reinterpret_cast<PyObject*>((*c.set)[i])))) {
        ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(dicts, 100u);
    EXPECT_GE(owners.size(), 2u);
  }
  // Without an owner scan, no Clodo kinds are made.
  EXPECT_TRUE(
      ClassifyObjects(*namer, g->addresses, g->sizes, nullptr).clodo.empty());
}

// Reading the objects on several lanes in small slices (lanes.h) gives
// the very kinds, names in the same order, Clodo kinds and watch key
// offsets that one lane gives, with or without the fused owner scan.
TEST_F(ClassifyObjectsTest, LanesGiveTheSameKindsAsOneLane) {
  absl::StatusOr<TypeNamer> namer = TypeNamer::Create();
  ASSERT_TRUE(namer.ok()) << namer.status();
  absl::StatusOr<heap::HeapGraph> g = Walk();
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<uintptr_t> copy = g->addresses;
  using Scan = const std::vector<uintptr_t>*;
  for (Scan scan : {Scan{&g->addresses}, Scan{&copy}, Scan{nullptr}}) {
    SCOPED_TRACE(scan == nullptr         ? "no owner scan"
                 : scan == &g->addresses ? "fused owner scan"
                                         : "owner scan of a copy");
    std::vector<uint8_t> one_offsets;
    int one_calls = 0;
    KindedSet one =
        ClassifyObjects(*namer, g->addresses, g->sizes, scan, &one_offsets,
                        heap::Lanes(1), [&] { ++one_calls; });
    EXPECT_EQ(one_calls, 1);
    for (const heap::Lanes lanes :
         {heap::Lanes(2, 37), heap::Lanes(3, 1000), heap::Lanes(2)}) {
      SCOPED_TRACE(::testing::Message()
                   << lanes.count() << " lanes, grain " << lanes.grain());
      std::vector<uint8_t> offsets;
      const std::thread::id caller = std::this_thread::get_id();
      std::thread::id packing_ran_on;
      KindedSet many = ClassifyObjects(
          *namer, g->addresses, g->sizes, scan, &offsets, lanes, [&] {
            packing_ran_on = std::this_thread::get_id();
            // The key offsets are known by now.
            EXPECT_EQ(offsets, one_offsets);
          });
      EXPECT_EQ(packing_ran_on, caller);
      EXPECT_EQ(*many.kind_names, *one.kind_names);
      EXPECT_EQ(many.kinds.ToVector(), one.kinds.ToVector());
      EXPECT_EQ(many.clodo.ToVector(), one.clodo.ToVector());
      EXPECT_EQ(many.addresses.ToVector(), g->addresses);
      EXPECT_EQ(many.sizes.ToVector(), g->sizes);
      EXPECT_EQ(offsets, one_offsets);
    }
  }
}

// Via's label of a member held one way as an item is RenderVia's of the
// item's text, for small and large indexes, alone and in a combination.
TEST(RenderItemViaTest, IsRenderViaOfTheItemsText) {
  EXPECT_EQ(RenderItemVia(3, /*in_and=*/false), "'[3]'");
  EXPECT_EQ(RenderItemVia(3, /*in_and=*/true), "{'[3]'}");
  for (const int64_t k : {int64_t{0}, int64_t{9}, int64_t{10}, int64_t{123456},
                          int64_t{1} << 24, INT64_MAX}) {
    for (const bool in_and : {false, true}) {
      EXPECT_EQ(RenderItemVia(k, in_and),
                RenderVia({"[" + std::to_string(k) + "]"}, in_and))
          << k << " " << in_and;
    }
  }
}

}  // namespace
}  // namespace annex::glue
