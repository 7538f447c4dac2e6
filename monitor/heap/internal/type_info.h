// Per-type facts a walk needs for every object, looked up once per type per
// walk: how to traverse it and how to size it like sys.getsizeof, without
// running Python code (docs/design.md rule 9).
#pragma once

#include <Python.h>

#include <cstdint>

#include "absl/container/node_hash_map.h"
#include "monitor/heap/extension_registry.h"
#include "monitor/heap/sizing.h"
#include "monitor/python/version.h"

namespace annex::heap::internal {

struct TypeInfo {
  enum class SizeRule : uint8_t {
    kBasic,      // basicsize + itemsize * |ob_size| (object.__sizeof__)
    kCMethod,    // the type's C-level __sizeof__ (METH_NOARGS)
    kExtension,  // a registered size function
    // A C-level __sizeof__ with another calling convention (e.g. 3.13's
    // ctypes metatypes: METH_METHOD), called through its descriptor.
    kCDescriptor,
  };
  traverseproc traverse = nullptr;  // null: a leaf, unless ext traverse
  bool check_is_gc = false;         // tp_is_gc decides per object
  bool is_frame = false;
  bool is_dict = false;  // keys are walked too (see walker.cc)
  bool is_type = false;  // pre-header depends on the object
  // Instances may keep attribute values sys.getsizeof leaves out
  // (python::MayHaveInlineValues).
  bool inline_values = false;
  // References tp_traverse does not report (code objects, types,
  // descriptors, modules, ranges; monitor/python/version.h); null for most
  // types, which then cost one test per object.
  python::ExtraReferentsFn extras = nullptr;
  SizeRule size_rule = SizeRule::kBasic;
  PyCFunction sizeof_fn = nullptr;
  PyObject* sizeof_descr = nullptr;  // borrowed: the type's dict holds it
  const ExtensionFunctions* ext = nullptr;
  bool pre_header_known = false;
  uint64_t pre_header = 0;  // what sys.getsizeof adds
};

// Valid for one stretch of continuous GIL holding (types cannot die then).
// Where: GIL held, the target current (C __sizeof__ runs in it).
class TypeInfoCache {
 public:
  explicit TypeInfoCache(const ExtensionRegistry* registry);
  ~TypeInfoCache();
  TypeInfoCache(const TypeInfoCache&) = delete;
  TypeInfoCache& operator=(const TypeInfoCache&) = delete;

  // Once per object of a walk: a heap's objects take turns among a few
  // types (a record, its str, its int, its tuple...), so a one-entry
  // cache misses on most objects, and hashing each type cost a third of
  // the walk. The common case is one compare in a direct-mapped cache.
  TypeInfo& Get(PyTypeObject* type) {
    const size_t slot = Slot(type);
    if (__builtin_expect(cache_type_[slot] == type, 1)) {
      return *cache_info_[slot];
    }
    return Miss(type, slot);
  }

  // sys.getsizeof(obj) as the target would compute it.
  uint64_t SizeOf(PyObject* obj, TypeInfo& info);

  // The engine's one sizing rule: SizeOf, plus with Sizing::kExact the
  // attribute values block sys.getsizeof leaves out (python::
  // InlineValuesBytes; only for types with TypeInfo::inline_values), which
  // is also stored in `*values` (0 when none).
  uint64_t Size(PyObject* obj, TypeInfo& info, Sizing sizing,
                uint64_t* values) {
    const uint64_t size = SizeOf(obj, info);
    *values = sizing == Sizing::kExact && info.inline_values
                  ? python::InlineValuesBytes(obj)
                  : 0;
    return size + *values;
  }

  // Whether tp_traverse (or the registered traverse) applies to `obj`,
  // exactly as gc.get_referents decides.
  static bool Traversable(PyObject* obj, const TypeInfo& info) {
    if (info.ext != nullptr && info.ext->traverse) return true;
    if (info.traverse == nullptr) return false;
    if (info.check_is_gc) return Py_TYPE(obj)->tp_is_gc(obj) != 0;
    return true;
  }

 private:
  static constexpr size_t kCache = 256;
  static size_t Slot(PyTypeObject* type) {
    // Type objects are at least 400 bytes apart: the bits above the
    // allocator's 16-byte alignment spread them.
    return (reinterpret_cast<uintptr_t>(type) >> 4) % kCache;
  }
  TypeInfo& Miss(PyTypeObject* type, size_t slot);
  TypeInfo Compute(PyTypeObject* type);

  const ExtensionRegistry* registry_;
  PyObject* sizeof_name_ = nullptr;  // interned "__sizeof__", target's
  PyCFunction object_sizeof_ = nullptr;
  // Node map: an entry stays put, so the cache may point into it.
  absl::node_hash_map<PyTypeObject*, TypeInfo> map_;
  PyTypeObject* cache_type_[kCache] = {};
  TypeInfo* cache_info_[kCache] = {};
};

}  // namespace annex::heap::internal
