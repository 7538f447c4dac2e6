// The heap engine's oracle (see oracle_util.h).
#include "tests/heap/oracle_util.h"

#include <Python.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/roots.h"
#include "monitor/python/version.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap::testing {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// The oracle: BFS over gc.get_referents, plus what tp_traverse does not
// report, read through Python attributes that return the stored object
// (and so create nothing the walk could count): a code object's co_consts,
// co_names, co_exceptiontable, co_filename, co_name, co_qualname and
// co_linetable; a type's dict (the mapping behind type.__dict__, found as
// the referent of the mappingproxy, which is new and never counted),
// __mro__, __bases__, __base__ and, for heap types, __name__ and
// __qualname__; a descriptor's __name__; a range's start, stop and step.
// Slot getters are taken from type.__dict__ so a metaclass cannot run code.
// What no attribute exposes (a code object's co_localsplusnames and
// co_localspluskinds and cached co_code/co_varnames, a type's subclass
// dict, a heap type's ht_slots tuple and shared-key names, a descriptor's
// cached qualname, a module's md_name, a range's length, on 3.13 the
// __dict__ made for an instance while its values are inline) comes from
// `hidden`, which reads those fields in C (python::VisitUnexposedReferents)
// and returns a new list, never counted either.
// Live frames (the roots from thread
// stacks) additionally contribute their code, globals, builtins and the
// values of their locals, which is what the engine reads from them; the
// f_locals dict that 3.11/3.12 synthesize for a function frame is the
// oracle's own creation and is left out (its values are not), unless
// `snapshots` says the caller made them before the engine's walk (see
// Compare). Dict keys are
// added too: dict_traverse skips the keys of str-keyed dicts, the engine
// does not (docs/heap-engine.md). Types are asked with type(), never
// isinstance(): isinstance() looks up o.__class__, and on a threading.local
// that creates the calling thread's dict (seen with CPython's test suite).
//
// Sizes: the oracle sums sys.getsizeof over its set and, for each object
// with an attribute values block (which sys.getsizeof leaves out and the
// engine counts by default), gives that block's size from CPython's layout
// facts, read with ctypes (docs/heap-engine.md "Inline values"): 3.13
// stores the capacity in the inline area after the object header, so the
// size is exact; 3.11/3.12 store only the prefix length before the slots
// (capacity + 2 rounded up to 8), which bounds the capacity to 8 values.
constexpr char kOracle[] = R"(
import gc, sys, types, ctypes
_annex_u8 = ctypes.c_uint8.from_address
_annex_word = ctypes.c_size_t.from_address
_annex_version = sys.version_info[:2]
def _annex_values_block(o, flags):
    if _annex_version >= (3, 13):
        if not flags & (1 << 2):  # Py_TPFLAGS_INLINE_VALUES
            return None
        cap = _annex_u8(id(o) + 16).value  # after the 16-byte header
        n = 8 + 8 * cap + (cap + 7) // 8 * 8
        return n, n
    if not flags & (1 << 4):  # Py_TPFLAGS_MANAGED_DICT
        return None
    if _annex_version == (3, 12):
        w = _annex_word(id(o) - 24).value  # dict or values, tagged
        if not w & 1:
            return None
        block = w + 1
    else:
        block = _annex_word(id(o) - 32).value  # values, NULL with a dict
        if not block:
            return None
    p = _annex_u8(block - 1).value
    return p + 8 * max(1, p - 9), p + 8 * (p - 2)
def _annex_refresh(roots):
    for r in roots:
        if type(r) is types.FrameType:
            r.f_locals
def _annex_oracle(roots, snapshots, hidden):
    seen = {}
    stack = []
    def add(o):
        if id(o) not in seen:
            seen[id(o)] = o
            stack.append(o)
    tslots = type.__dict__
    t_dict = tslots['__dict__'].__get__
    t_mro = tslots['__mro__'].__get__
    t_bases = tslots['__bases__'].__get__
    t_base = tslots['__base__'].__get__
    t_name = tslots['__name__'].__get__
    t_qualname = tslots['__qualname__'].__get__
    t_flags = tslots['__flags__'].__get__
    heaptype = 1 << 9
    ready = 1 << 12
    code_type = types.CodeType
    descr_types = (types.WrapperDescriptorType, types.MethodDescriptorType,
                   types.ClassMethodDescriptorType,
                   types.MemberDescriptorType, types.GetSetDescriptorType)
    module_type = types.ModuleType
    longrange_iter = type(iter(range(1 << 70)))
    for r in roots:
        add(r)
        if type(r) is types.FrameType:
            add(r.f_code)
            add(r.f_globals)
            add(r.f_builtins)
            loc = r.f_locals
            # CO_OPTIMIZED: a synthesized mapping (3.13: a proxy)
            if r.f_code.co_flags & 1 and not (snapshots and type(loc) is dict):
                for v in loc.values():
                    add(v)
            else:
                add(loc)
    while stack:
        o = stack.pop()
        for r in gc.get_referents(o):
            add(r)
        t = type(o)
        if issubclass(t, dict):
            for k in dict.keys(o):
                add(k)
        elif t is code_type:
            for r in (o.co_consts, o.co_names, o.co_exceptiontable,
                      o.co_filename, o.co_name, o.co_qualname,
                      o.co_linetable):
                add(r)
            for r in hidden(o):
                add(r)
        elif issubclass(t, type):
            for r in gc.get_referents(t_dict(o)):
                add(r)
            # __bases__ of a type never readied (a static type of an
            # extension, e.g. _testcapi's) would read a NULL tp_bases.
            if t_flags(o) & ready:
                for r in (t_mro(o), t_bases(o)):
                    if r is not None:
                        add(r)
            if t_base(o) is not None:
                add(t_base(o))
            if t_flags(o) & heaptype:
                add(t_name(o))
                add(t_qualname(o))
            for r in hidden(o):
                add(r)
        elif t in descr_types:
            add(o.__name__)
            for r in hidden(o):
                add(r)
        elif t is range:
            add(o.start)
            add(o.stop)
            add(o.step)
            for r in hidden(o):
                add(r)
        elif issubclass(t, module_type) or t is longrange_iter:
            for r in hidden(o):
                add(r)
        elif _annex_version >= (3, 13) and t_flags(t) & (1 << 2):
            # Py_TPFLAGS_INLINE_VALUES: a __dict__ made while the values
            # are inline, which tp_traverse does not visit.
            for r in hidden(o):
                add(r)
    values = []
    for i, o in seen.items():
        b = _annex_values_block(o, t_flags(type(o)))
        if b is not None:
            values.append((i, b[0], b[1]))
    return list(seen), sum(sys.getsizeof(o) for o in seen.values()), values
)";

// `hidden(o)` for the oracle: a new list of the referents of `o` that no
// Python attribute exposes. GIL held, target current.
int AppendToList(PyObject* obj, void* list) {
  return PyList_Append(static_cast<PyObject*>(list), obj);
}
PyObject* Hidden(PyObject* /*self*/, PyObject* obj) {
  PyObject* list = PyList_New(0);
  if (list == nullptr) return nullptr;
  python::VisitUnexposedReferents(obj, &AppendToList, list);
  return list;
}
PyMethodDef kHiddenDef = {"_annex_hidden", &Hidden, METH_O, nullptr};

// Type, address and, for objects whose repr runs no Python code (exact
// built-in scalars and containers), the start of the repr. GIL held; `addr`
// alive.
std::string Describe(uintptr_t addr) {
  PyObject* o = reinterpret_cast<PyObject*>(addr);
  std::string s = absl::StrCat(Py_TYPE(o)->tp_name, " at ", absl::Hex(addr));
  const bool plain = PyUnicode_CheckExact(o) || PyLong_CheckExact(o) ||
                     PyFloat_CheckExact(o) || PyBytes_CheckExact(o) ||
                     o == Py_None || PyBool_Check(o);
  const bool container = PyTuple_CheckExact(o) || PyList_CheckExact(o) ||
                         PyDict_CheckExact(o) || PySet_CheckExact(o);
  if (plain) {
    PyObject* r = PyObject_Repr(o);
    if (r != nullptr) {
      const char* u = PyUnicode_AsUTF8(r);
      if (u != nullptr) absl::StrAppend(&s, " ", std::string(u).substr(0, 80));
      Py_DECREF(r);
    }
  } else if (container) {
    absl::StrAppend(&s, " len=", PyObject_Length(o));
  }
  PyErr_Clear();
  return s;
}

// Objects per type name of `addresses` (alive). GIL held.
std::map<std::string, long> CountByType(
    const std::vector<uintptr_t>& addresses) {
  std::map<std::string, long> out;
  for (uintptr_t a : addresses) {
    ++out[Py_TYPE(reinterpret_cast<PyObject*>(a))->tp_name];
  }
  return out;
}

}  // namespace

bool InstallOracle() { return RunTargetCode(kOracle); }

Comparison CompareWithGcOff(bool refresh_frame_locals);

// GIL held, target current, no Python frames on this thread.
Comparison Compare(bool refresh_frame_locals) {
  // No collection (and so no finalizer) between the two walks.
  const int gc_was_enabled = PyGC_Disable();
  Comparison c = CompareWithGcOff(refresh_frame_locals);
  if (gc_was_enabled) PyGC_Enable();
  return c;
}

Comparison CompareWithGcOff(bool refresh_frame_locals) {
  Comparison c;
  PyObject* root_list = PyList_New(0);
  {
    absl::StatusOr<RootList> roots = CollectRoots({});
    EXPECT_TRUE(roots.ok());
    for (size_t i = 0; i < roots->size(); ++i) {
      PyList_Append(root_list, roots->object(i));
    }
  }
  PyObject* snapshots = refresh_frame_locals ? Py_True : Py_False;
  if (refresh_frame_locals) {
    PyObject* refresh = EvalTarget("_annex_refresh");
    PyObject* r = PyObject_CallOneArg(refresh, root_list);
    Py_DECREF(refresh);
    EXPECT_NE(r, nullptr);
    if (r == nullptr) PyErr_Print();
    Py_XDECREF(r);
  }
  HeapEngine engine(testing::MainThreadStates());
  // The default sizing, then sys.getsizeof's, in one question (the same
  // objects).
  HeapResult stats;
  absl::StatusOr<HeapGraph> exact, plain;
  {
    HeapEngine::Question question(engine);
    exact = engine.Graph(&stats);
    HeapEngine::ScopedSizing sizing(engine, Sizing::kGetsizeof);
    plain = engine.Graph();
  }
  EXPECT_TRUE(exact.ok()) << exact.status();
  EXPECT_TRUE(plain.ok()) << plain.status();
  if (!exact.ok() || !plain.ok()) {
    Py_DECREF(root_list);
    return c;
  }
  EXPECT_EQ(exact->addresses, plain->addresses);
  ObjectSet engine_set = ObjectSet::FromUnsorted(exact->addresses);
  c.engine = exact->size();
  c.engine_bytes = stats.total_bytes;
  c.engine_values_bytes = stats.inline_values_bytes;
  for (uint64_t s : plain->sizes) c.engine_getsizeof_bytes += s;
  PyObject* oracle = EvalTarget("_annex_oracle");
  PyObject* hidden = PyCFunction_New(&kHiddenDef, nullptr);
  PyObject* res = PyObject_CallFunctionObjArgs(oracle, root_list, snapshots,
                                               hidden, nullptr);
  Py_DECREF(hidden);
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
  for (uintptr_t a : engine_set - oracle_set) {
    if (c.only_engine.size() < 10) c.only_engine.push_back(Describe(a));
  }
  for (uintptr_t a : oracle_set - engine_set) {
    if (c.only_oracle.size() < 10) c.only_oracle.push_back(Describe(a));
  }
  // Values blocks, object by object: what the default sizing adds to
  // sys.getsizeof is within the oracle's bounds for the objects that have
  // a block, and nothing for every other object.
  {
    std::map<uintptr_t, std::pair<uint64_t, uint64_t>> blocks;
    PyObject* values = PyTuple_GetItem(res, 2);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); ++i) {
      PyObject* t = PyList_GET_ITEM(values, i);
      const uint64_t lo = PyLong_AsUnsignedLongLong(PyTuple_GetItem(t, 1));
      const uint64_t hi = PyLong_AsUnsignedLongLong(PyTuple_GetItem(t, 2));
      blocks[PyLong_AsSize_t(PyTuple_GetItem(t, 0))] = {lo, hi};
      c.oracle_values_min += lo;
      c.oracle_values_max += hi;
    }
    c.oracle_values_objects = blocks.size();
    for (size_t v = 0; v < exact->size(); ++v) {
      const uint64_t added = exact->sizes[v] - plain->sizes[v];
      if (added != 0) ++c.engine_values_objects;
      auto it = blocks.find(exact->addresses[v]);
      const uint64_t lo = it == blocks.end() ? 0 : it->second.first;
      const uint64_t hi = it == blocks.end() ? 0 : it->second.second;
      if ((added < lo || added > hi) && c.values_differences.size() < 10) {
        c.values_differences.push_back(absl::StrCat(
            Describe(exact->addresses[v]), " ", added, " ", lo, "-", hi));
      }
    }
  }
  // The classification by type, counted from both sides.
  std::map<std::string, long> by_engine = CountByType(exact->addresses);
  std::map<std::string, long> by_oracle = CountByType(ids);
  for (const auto& [type, n] : by_engine) {
    auto it = by_oracle.find(type);
    const long m = it == by_oracle.end() ? 0 : it->second;
    if (n != m && c.type_differences.size() < 10) {
      c.type_differences.push_back(absl::StrCat(type, " ", n, " ", m));
    }
  }
  for (const auto& [type, m] : by_oracle) {
    if (!by_engine.count(type) && c.type_differences.size() < 10) {
      c.type_differences.push_back(absl::StrCat(type, " 0 ", m));
    }
  }
  if (c.engine_getsizeof_bytes != c.oracle_bytes) {
    HeapEngine::ScopedSizing sizing(engine, Sizing::kGetsizeof);
    PyObject* getsizeof = PySys_GetObject("getsizeof");  // borrowed
    for (uintptr_t a : engine_set& oracle_set) {
      if (c.size_differences.size() >= 10) break;
      PyObject* o = reinterpret_cast<PyObject*>(a);
      absl::StatusOr<uint64_t> mine = engine.SizeOf(o);
      PyObject* theirs = PyObject_CallOneArg(getsizeof, o);
      const uint64_t t =
          theirs == nullptr ? 0 : PyLong_AsUnsignedLongLong(theirs);
      Py_XDECREF(theirs);
      PyErr_Clear();
      if (mine.ok() && *mine != t) {
        c.size_differences.push_back(
            absl::StrCat(Describe(a), " ", *mine, " ", t));
      }
    }
  }
  Py_DECREF(res);
  return c;
}

void ExpectBytesMatch(const Comparison& c, const std::string& workload) {
  // sys.getsizeof's sizes: exactly the oracle's sum.
  EXPECT_EQ(c.engine_getsizeof_bytes, c.oracle_bytes) << workload;
  // The default sizes: that plus the values blocks, within the oracle's
  // bounds (one value on 3.13), object by object.
  EXPECT_EQ(c.engine_bytes, c.engine_getsizeof_bytes + c.engine_values_bytes)
      << workload;
  EXPECT_GE(c.engine_bytes, c.oracle_bytes + c.oracle_values_min) << workload;
  EXPECT_LE(c.engine_bytes, c.oracle_bytes + c.oracle_values_max) << workload;
  EXPECT_EQ(c.engine_values_objects, c.oracle_values_objects) << workload;
  for (const std::string& s : c.values_differences)
    ADD_FAILURE() << workload << ": values block, engine, oracle range: " << s;
}

void ExpectMatch(const char* workload, bool refresh_frame_locals) {
  Comparison c = Compare(refresh_frame_locals);
  EXPECT_EQ(c.engine, c.oracle) << workload;
  ExpectBytesMatch(c, workload);
  for (const std::string& s : c.only_engine)
    ADD_FAILURE() << workload << ": only engine: " << s;
  for (const std::string& s : c.only_oracle)
    ADD_FAILURE() << workload << ": only oracle: " << s;
  for (const std::string& s : c.type_differences)
    ADD_FAILURE() << workload << ": type, engine count, oracle count: " << s;
  for (const std::string& s : c.size_differences)
    ADD_FAILURE() << workload << ": size now, engine getsizeof: " << s;
  EXPECT_GT(c.engine, 1000u);
}

}  // namespace annex::heap::testing
