// Per-type facts a walk needs for every object, looked up once per type per
// walk: how to traverse it and how to size it like sys.getsizeof, without
// running Python code (docs/design.md rule 9).
#pragma once

#include <Python.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
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

  TypeInfo& Get(PyTypeObject* type) {
    if (type == last_type_) return *last_info_;
    auto it = map_.find(type);
    if (it == map_.end()) it = map_.emplace(type, Compute(type)).first;
    last_type_ = type;
    last_info_ = &it->second;
    return it->second;
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
  TypeInfo Compute(PyTypeObject* type);

  const ExtensionRegistry* registry_;
  PyObject* sizeof_name_ = nullptr;  // interned "__sizeof__", target's
  PyCFunction object_sizeof_ = nullptr;
  absl::flat_hash_map<PyTypeObject*, TypeInfo> map_;
  PyTypeObject* last_type_ = nullptr;
  TypeInfo* last_info_ = nullptr;
};

}  // namespace annex::heap::internal
