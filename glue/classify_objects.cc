// ClassifyObjects: the kind and size of each object of a walk, read once
// inside the walk's question (Clodo kinds, dict owners).
#include <algorithm>
#include <functional>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "glue/heap_view.h"
#include "monitor/heap/address_index.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/huge_pages.h"

namespace annex::glue {

namespace {

// Per type met: its kind (an index into the kind names, assigned in order
// of first use) and how its instances hold an attribute dict, behind a
// direct-mapped cache (a heap has few types and millions of objects).
// Where: GIL held; the types alive.
class TypeTable {
 public:
  struct Entry {
    uint32_t kind = kNoKind;
    uint8_t key_offset = 0;  // python::WatchedObjects::KeyOffset
    DictHolding holding = DictHolding::kNone;
    bool holding_known = false;
  };
  static constexpr uint32_t kNoKind = UINT32_MAX;

  TypeTable(const TypeNamer& namer, std::vector<std::string>& names)
      : namer_(namer), names_(names) {}

  Entry& Get(PyTypeObject* type) {
    const size_t slot = (reinterpret_cast<uintptr_t>(type) >> 4) % kCache;
    if (cache_type_[slot] == type) return *cache_entry_[slot];
    Entry& e = entries_[type];  // node map: entries stay put
    cache_type_[slot] = type;
    cache_entry_[slot] = &e;
    return e;
  }
  // The entry of `type`, its kind and key offset assigned.
  Entry& Known(PyTypeObject* type) {
    Entry& e = Get(type);
    if (e.kind == kNoKind) {
      e.kind = static_cast<uint32_t>(names_.size());
      e.key_offset = python::WatchedObjects::KeyOffset(type);
      names_.push_back(namer_.Name(type));
    }
    return e;
  }
  DictHolding Holding(PyTypeObject* type) {
    Entry& e = Get(type);
    if (!e.holding_known) {
      e.holding = DictHoldingOf(type);
      e.holding_known = true;
    }
    return e.holding;
  }
  // The kind of `type` when one was assigned, else kNoKind.
  uint32_t KindIfAny(PyTypeObject* type) {
    auto it = entries_.find(type);
    return it == entries_.end() ? kNoKind : it->second.kind;
  }

 private:
  static constexpr size_t kCache = 64;
  const TypeNamer& namer_;
  std::vector<std::string>& names_;
  absl::node_hash_map<PyTypeObject*, Entry> entries_;
  PyTypeObject* cache_type_[kCache] = {};
  Entry* cache_entry_[kCache] = {};
};

// The types one slice of a scan met (in its order of first use), how
// their instances hold a dict, and the dicts its members own, found on a
// lane (no Python calls); kind_of is filled in on the caller.
struct SliceTypes {
  std::vector<PyTypeObject*> types;
  std::vector<DictHolding> holding;  // per type
  std::vector<std::pair<uintptr_t, PyTypeObject*>>
      owned;                      // (dict, owner's type)
  std::vector<uint32_t> kind_of;  // per type

  // The slice's number for `type`, behind a direct-mapped cache (a heap
  // has few types and millions of objects; a slice of one with thousands
  // of classes still finds each by hash).
  uint32_t Number(PyTypeObject* type) {
    const size_t slot = (reinterpret_cast<uintptr_t>(type) >> 4) % kCache;
    if (cache_type[slot] == type) return cache_number[slot];
    auto [it, added] =
        number_of.emplace(type, static_cast<uint32_t>(types.size()));
    if (added) {
      types.push_back(type);
      holding.push_back(DictHoldingOf(type));
    }
    cache_type[slot] = type;
    cache_number[slot] = it->second;
    return it->second;
  }

 private:
  static constexpr size_t kCache = 64;
  absl::flat_hash_map<PyTypeObject*, uint32_t> number_of;
  PyTypeObject* cache_type[kCache] = {};
  uint32_t cache_number[kCache] = {};
};

// How far ahead of the scan objects are prefetched: the scan runs in
// address order, but a heap's objects sit in pools of different size
// classes, so the hardware prefetcher alone loses the stream.
constexpr size_t kPrefetchAhead = 16;

}  // namespace

KindedSet ClassifyObjects(const TypeNamer& namer,
                          const std::vector<uintptr_t>& sorted,
                          const std::vector<uint64_t>& sizes,
                          const std::vector<uintptr_t>* owner_scan,
                          std::vector<uint8_t>* key_offsets, heap::Lanes lanes,
                          const std::function<void()>& while_packing) {
  // The kinds are found into plain vectors (on the lanes), then packed
  // (packed_columns.h) with the addresses and sizes: the result is what a
  // kept set holds. The columns are packed by a helper while the caller
  // runs `while_packing`, or shared by both without it (one helper at a
  // time: more threads than lanes would only take turns).
  KindedSet out;
  std::vector<uint32_t> kinds, clodo;
  ClassifyKinds(namer, sorted, owner_scan, kinds,
                owner_scan != nullptr ? &clodo : nullptr, *out.kind_names,
                key_offsets, lanes);
  auto pack_places = [&] {
    out.addresses = PackedAddresses::From(sorted);
    out.sizes = PackedSizes::From(sizes);
  };
  // Kinds and Clodo kinds index the kind names: no pass for their width.
  const uint32_t max_kind =
      static_cast<uint32_t>(std::max<size_t>(out.kind_names->size(), 1) - 1);
  auto pack_kinds = [&] {
    out.kinds = PackedUints::From(kinds, max_kind);
    if (owner_scan != nullptr) out.clodo = PackedUints::From(clodo, max_kind);
  };
  if (while_packing) {
    lanes.Beside(
        [&] {
          pack_places();
          pack_kinds();
        },
        while_packing);
  } else {
    lanes.Beside(pack_places, pack_kinds);
  }
  return out;
}

void ClassifyKinds(const TypeNamer& namer, const std::vector<uintptr_t>& sorted,
                   const std::vector<uintptr_t>* owner_scan,
                   std::vector<uint32_t>& kinds, std::vector<uint32_t>* clodo,
                   std::vector<std::string>& kind_names,
                   std::vector<uint8_t>* key_offsets, heap::Lanes lanes) {
  const size_t n = sorted.size();
  kinds.clear();
  python::ReserveHuge(kinds, n);
  kinds.resize(n);
  if (key_offsets != nullptr) python::AssignHuge(*key_offsets, n, uint8_t{0});
  TypeTable types(namer, kind_names);
  const bool fused = owner_scan == &sorted;
  // The members' types are read on the lanes (lanes.h), slice by slice:
  // each slice numbers the types it meets in its own order and writes
  // those numbers to `kinds`, and (when the owners are the members
  // themselves) lists the dicts its members own. Reading types, dict
  // holding and dict pointers is plain memory; naming a type may call
  // Python, so kinds are assigned here, on the caller, slice by slice in
  // order (kinds stay numbered in order of first use in `sorted`), and a
  // second pass on the lanes turns each slice's numbers into kinds.
  const size_t grain = lanes.grain();
  std::vector<SliceTypes> slices((n + grain - 1) / grain);
  lanes.For(n, [&](size_t from, size_t to) {
    SliceTypes& slice = slices[from / grain];
    for (size_t i = from; i < to; ++i) {
      if (i + kPrefetchAhead < to) {
        __builtin_prefetch(reinterpret_cast<void*>(sorted[i + kPrefetchAhead]));
      }
      PyObject* obj = reinterpret_cast<PyObject*>(sorted[i]);
      const uint32_t local = slice.Number(Py_TYPE(obj));
      kinds[i] = local;
      if (fused) {
        const DictHolding holding = slice.holding[local];
        if (holding != DictHolding::kNone) {
          if (PyObject* dict = OwnedDict(obj, holding); dict != nullptr) {
            slice.owned.emplace_back(reinterpret_cast<uintptr_t>(dict),
                                     Py_TYPE(obj));
          }
        }
      }
    }
  });
  std::vector<uint8_t> key_offset_of_kind;
  for (SliceTypes& slice : slices) {
    slice.kind_of.resize(slice.types.size());
    for (size_t t = 0; t < slice.types.size(); ++t) {
      const TypeTable::Entry& e = types.Known(slice.types[t]);
      slice.kind_of[t] = e.kind;
      if (e.kind >= key_offset_of_kind.size()) {
        key_offset_of_kind.resize(e.kind + 1);
      }
      key_offset_of_kind[e.kind] = e.key_offset;
    }
  }
  lanes.For(n, [&](size_t from, size_t to) {
    const std::vector<uint32_t>& kind_of = slices[from / grain].kind_of;
    for (size_t i = from; i < to; ++i) {
      const uint32_t kind = kind_of[kinds[i]];
      kinds[i] = kind;
      if (key_offsets != nullptr) (*key_offsets)[i] = key_offset_of_kind[kind];
    }
  });
  if (owner_scan == nullptr) return;
  // Clodo: a dict is "dict of <owner's type>" or "dict (no owner)". Owners
  // are found from the owner's side (an object knows its dict, a dict not
  // its owner); each owned dict is placed among `sorted` by an address
  // index, whose lookups follow the heap's layout and stay in cache (a hash
  // map of millions of dicts did not). Building the index costs ~1.5 ns per
  // member, more than a few binary searches: owned dicts are first kept
  // aside, and the index is built only once they pass 1/64 of the members
  // (a heap of slots objects or plain dicts never needs it). `clodo`
  // first holds, per member, 1 + the owner's number in `owner_types` (0: no
  // owner found).
  std::vector<uint32_t>& clodo_of = *clodo;
  clodo_of.clear();
  python::ReserveHuge(clodo_of, n);
  clodo_of.assign(n, 0);
  std::vector<PyTypeObject*> owner_types;
  absl::flat_hash_map<PyTypeObject*, uint32_t> owner_number;
  PyTypeObject* last_owner = nullptr;
  uint32_t last_number = 0;
  std::optional<heap::AddressIndex> index;
  std::vector<std::pair<uintptr_t, uint32_t>> pending;  // (dict, 1 + owner)
  const size_t max_pending = n / 64;
  auto place = [&](int64_t j, uint32_t code) {
    // Not a member, or the first owner (in scan order) wins.
    if (j >= 0 && clodo_of[j] == 0) clodo_of[j] = code;
  };
  // An owner of `type` owns the dict at `d`.
  auto record_owner = [&](uintptr_t d, PyTypeObject* type) {
    if (type != last_owner) {
      auto [it, added] = owner_number.emplace(type, owner_types.size());
      if (added) owner_types.push_back(type);
      last_owner = type;
      last_number = it->second;
    }
    if (index.has_value()) {
      place(index->Find(d), last_number + 1);
      return;
    }
    pending.emplace_back(d, last_number + 1);
    if (pending.size() > max_pending) {
      index.emplace(sorted);
      for (const auto& [a, code] : pending) place(index->Find(a), code);
      pending.clear();
    }
  };
  if (fused) {
    for (const SliceTypes& slice : slices) {
      for (const auto& [dict, type] : slice.owned) record_owner(dict, type);
    }
  } else {
    const std::vector<uintptr_t>& scan = *owner_scan;
    for (size_t i = 0; i < scan.size(); ++i) {
      if (i + kPrefetchAhead < scan.size()) {
        __builtin_prefetch(reinterpret_cast<void*>(scan[i + kPrefetchAhead]));
      }
      PyObject* obj = reinterpret_cast<PyObject*>(scan[i]);
      DictHolding holding = types.Holding(Py_TYPE(obj));
      if (PyObject* dict = OwnedDict(obj, holding); dict != nullptr) {
        record_owner(reinterpret_cast<uintptr_t>(dict), Py_TYPE(obj));
      }
    }
  }
  for (const auto& [a, code] : pending) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), a);
    place(it != sorted.end() && *it == a ? it - sorted.begin() : -1, code);
  }
  const uint32_t dict_kind = types.KindIfAny(&PyDict_Type);
  if (dict_kind == TypeTable::kNoKind) {  // no dicts: Clodo is Type
    clodo_of.assign(kinds.begin(), kinds.end());
    return;
  }
  absl::flat_hash_map<std::string, uint32_t> index_of_name;
  for (uint32_t k = 0; k < kind_names.size(); ++k) {
    index_of_name.emplace(kind_names[k], k);
  }
  const uint32_t no_owner =
      Labels::Intern(kNoOwnerDict, index_of_name, kind_names);
  // "dict of X" names in order of first use in `sorted`, as kinds are.
  std::vector<uint32_t> dict_of(owner_types.size(), TypeTable::kNoKind);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t kind = kinds[i];
    uint32_t& code = clodo_of[i];  // 1 + the owner's number, or 0
    if (kind != dict_kind) {
      code = kind;
    } else if (code == 0) {
      code = no_owner;
    } else {
      uint32_t& label = dict_of[code - 1];
      if (label == TypeTable::kNoKind) {
        label = Labels::Intern("dict of " + namer.Name(owner_types[code - 1]),
                               index_of_name, kind_names);
      }
      code = label;
    }
  }
}

}  // namespace annex::glue
