// With Sizing::kGetsizeof, sizes equal the target's sys.getsizeof for
// built-in types, computed without running target Python code. (The
// default, Sizing::kExact, adds instances' attribute values blocks:
// inline_values_test and the oracles.)
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

constexpr char kObjects[] = R"(
import sys, types, collections, weakref, array, decimal, fractions, re, io, functools
class SzPlain:
    pass
class SzSlots:
    __slots__ = ('a', 'b')
class SzDict(dict):
    pass
class SzList(list):
    pass
class SzInt(int):
    pass
class SzStr(str):
    pass
def sz_func(x, *, y=1):
    return x
def sz_gen():
    yield 1
async def sz_coro():
    pass
def sz_frame():
    return sys._getframe()
def sz_tb():
    try:
        raise ValueError('x')
    except ValueError as e:
        return e
sz_inst = SzPlain()
sz_inst.x = 1
sz_inst2 = SzPlain()
sz_inst2.__dict__['y'] = 2
sz_many = SzPlain()
for i in range(40):
    setattr(sz_many, 'a%d' % i, i)
sz_slots = SzSlots()
sz_slots.a = 1
sz_coro_obj = sz_coro()
sz_exc = sz_tb()
sz_objects = [
    0, 1, -1, 2**30, 2**100, -2**70, 1.5, 1j, True, False, None, Ellipsis, NotImplemented,
    '', 'a', 'abc' * 10, '\xe9' * 5, '\u20ac' * 10, '\U0001f600', sys.intern('interned_name'),
    b'', b'bytes' * 7, bytearray(), bytearray(b'xy' * 50), memoryview(b'abc'),
    [], [1, 2, 3], list(range(100)), [None] * 17,
    (), (1,), (1, 2), tuple(range(50)),
    {}, {'a': 1}, {i: i for i in range(100)}, {str(i): i for i in range(7)}, dict.fromkeys(range(1000)),
    set(), {1, 2, 3}, set(range(100)), frozenset(), frozenset(range(40)),
    range(10), slice(1, 2, 3), iter([]), iter(()), iter({}), iter(range(3)), reversed([1]),
    enumerate([]), zip([], []), map(len, []), filter(None, []),
    sz_inst, sz_inst2, sz_many, SzSlots(), sz_slots, SzDict(a=1), SzList([1, 2]), SzInt(5), SzInt(2**80), SzStr('abc'),
    object(), sz_func, lambda: 0, sz_func.__code__, sz_func.__defaults__, sz_func.__kwdefaults__,
    sz_gen(), (x for x in []), sz_coro_obj, sz_frame(), sz_exc, sz_exc.__traceback__,
    sys, types, collections, SzPlain, SzSlots, SzDict, int, type, object, dict, list, str, ValueError,
    SzPlain.__dict__, property(), staticmethod(sz_func), classmethod(sz_func), super(SzDict, SzDict()),
    sz_func.__get__(1), [].append, len, int.__add__, str.join, dict.__dict__['fromkeys'],
    weakref.ref(SzPlain), weakref.WeakValueDictionary(), collections.OrderedDict(a=1),
    collections.deque(range(10)), collections.defaultdict(list), collections.Counter('hello'),
    collections.namedtuple('P', 'x y')(1, 2), types.SimpleNamespace(a=1), types.MappingProxyType({}),
    array.array('i', range(10)), decimal.Decimal('1.5'), fractions.Fraction(1, 3),
    re.compile('a+b'), re.match('a', 'a'), io.StringIO('abc'), io.BytesIO(b'abc'),
    functools.partial(len), BaseException('x'), KeyError('k'), StopIteration(3),
    sys.flags, sys.version_info, sys.float_info, sz_func.__globals__, sz_func.__builtins__,
]
)";

TEST(SizesTest, EqualSysGetsizeofForBuiltInTypes) {
  ASSERT_TRUE(RunTargetCode(kObjects));
  HeapEngine engine(testing::MainThreadStates());
  engine.set_sizing(Sizing::kGetsizeof);
  PyObject* objects = EvalTarget("sz_objects");
  PyObject* getsizeof = EvalTarget("sys.getsizeof");
  ASSERT_NE(objects, nullptr);
  ASSERT_NE(getsizeof, nullptr);
  int mismatches = 0;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objects); ++i) {
    PyObject* o = PyList_GET_ITEM(objects, i);
    PyObject* r = PyObject_CallOneArg(getsizeof, o);
    ASSERT_NE(r, nullptr);
    const uint64_t expected = PyLong_AsUnsignedLongLong(r);
    Py_DECREF(r);
    absl::StatusOr<uint64_t> got = engine.SizeOf(o);
    ASSERT_TRUE(got.ok()) << got.status();
    if (*got != expected) {
      ++mismatches;
      ADD_FAILURE() << "index " << i << " type " << Py_TYPE(o)->tp_name
                    << ": engine " << *got << " sys.getsizeof " << expected;
    }
  }
  EXPECT_EQ(mismatches, 0);
  Py_DECREF(getsizeof);
  Py_DECREF(objects);
}

// SizesOf sizes many objects with one type cache (types of every kind,
// static and heap ones, whose pre-headers differ per object, repeated):
// each size is SizeOf's, under either sizing.
TEST(SizesTest, SizesOfAManyIsEachSizeOf) {
  ASSERT_TRUE(RunTargetCode(kObjects));
  HeapEngine engine(testing::MainThreadStates());
  PyObject* objects = EvalTarget("sz_objects + sz_objects[::-1]");
  ASSERT_NE(objects, nullptr);
  std::vector<uintptr_t> addresses;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objects); ++i) {
    addresses.push_back(
        reinterpret_cast<uintptr_t>(PyList_GET_ITEM(objects, i)));
  }
  for (Sizing sizing : {Sizing::kGetsizeof, Sizing::kExact}) {
    engine.set_sizing(sizing);
    absl::StatusOr<std::vector<uint64_t>> all = engine.SizesOf(addresses);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->size(), addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i) {
      absl::StatusOr<uint64_t> one =
          engine.SizeOf(reinterpret_cast<PyObject*>(addresses[i]));
      ASSERT_TRUE(one.ok()) << one.status();
      EXPECT_EQ((*all)[i], *one)
          << "index " << i << " type "
          << Py_TYPE(PyList_GET_ITEM(objects, i))->tp_name;
    }
  }
  Py_DECREF(objects);
}

TEST(SizesTest, NeverCallsAPythonLevelSizeof) {
  ASSERT_TRUE(RunTargetCode(R"(
sz_calls = []
class SzCustom:
    def __sizeof__(self):
        sz_calls.append(1)
        return 12345
sz_custom = SzCustom()
)"));
  HeapEngine engine(testing::MainThreadStates());
  engine.set_sizing(Sizing::kGetsizeof);
  PyObject* o = EvalTarget("sz_custom");
  absl::StatusOr<uint64_t> got = engine.SizeOf(o);
  ASSERT_TRUE(got.ok());
  // basicsize + pre-header, like object.__sizeof__ plus what sys.getsizeof
  // adds.
  PyObject* basic = EvalTarget(
      "object.__sizeof__(sz_custom) + sys.getsizeof(SzPlain()) - "
      "object.__sizeof__(SzPlain())");
  EXPECT_EQ(*got, PyLong_AsUnsignedLongLong(basic));
  Py_DECREF(basic);
  PyObject* calls = EvalTarget("len(sz_calls)");
  EXPECT_EQ(PyLong_AsLong(calls), 0);
  Py_DECREF(calls);
  Py_DECREF(o);
}

}  // namespace
}  // namespace annex::heap
