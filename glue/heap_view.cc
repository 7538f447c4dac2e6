// The session's heap service.
#include "glue/heap_view.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glue/annex_access.h"
#include "glue/session.h"
#include "monitor/heap/address_index.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/huge_pages.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/referrers.h"
#include "monitor/heap/retention.h"
#include "monitor/python/guards.h"
#include "monitor/python/target_threads.h"
#include "monitor/python/version.h"

namespace annex::glue {
uint64_t KindedSet::total_size() const { return sizes.Total(); }

void KindedSet::ShrinkToFit() {
  addresses.shrink_to_fit();
  kinds.shrink_to_fit();
  sizes.shrink_to_fit();
  clodo.shrink_to_fit();
  labels.of.shrink_to_fit();
}

size_t KindedSet::MemoryBytes() const {
  size_t bytes = sizeof(KindedSet) + addresses.MemoryBytes() +
                 kinds.MemoryBytes() + sizes.MemoryBytes() +
                 clodo.MemoryBytes() + labels.of.MemoryBytes();
  if (labels.names != nullptr && labels.names.use_count() == 1) {
    for (const std::string& n : *labels.names) {
      bytes += sizeof(std::string) + (n.capacity() > 15 ? n.capacity() : 0);
    }
  }
  // The identity watch (13 bytes a member on 3.11/3.12, 12 on 3.13) is
  // half as large again as the set's own vectors: charged to the set that
  // made it, not to the subsets and copies that share it.
  if (identity != nullptr && identity.use_count() == 1) {
    for (const auto& w : identity->watches) {
      if (w.use_count() == 1) bytes += w->MemoryBytes();
    }
  }
  return bytes;
}

uint32_t KindedSet::LabelOf(size_t i) const {
  if (classifier.is(Classifier::kType)) return kinds[i];
  if (classifier.is(Classifier::kClodo)) {
    return clodo.empty() ? kinds[i] : clodo[i];
  }
  return labels.of[i];
}

const std::vector<std::string>& KindedSet::LabelNames() const {
  if (classifier.is(Classifier::kType) || classifier.is(Classifier::kClodo)) {
    return *kind_names;
  }
  return *labels.names;
}

std::vector<KindedSet::Row> KindedSet::Rows() const {
  const std::vector<std::string>& names = LabelNames();
  std::vector<Row> rows(names.size());
  // The label column LabelOf reads, chosen once for the whole set.
  const PackedUints& of = classifier.is(Classifier::kType) ? kinds
                          : classifier.is(Classifier::kClodo)
                              ? (clodo.empty() ? kinds : clodo)
                              : labels.of;
  size_t i = 0;
  of.ForEach([&](uint32_t k) {
    Row& r = rows[k];
    r.count++;
    r.size += sizes[i++];
  });
  for (size_t k = 0; k < rows.size(); ++k) {
    rows[k].kind = names[k];
    rows[k].label = static_cast<uint32_t>(k);
  }
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [](const Row& r) { return r.count == 0; }),
             rows.end());
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.size != b.size) return a.size > b.size;
    if (a.count != b.count) return a.count > b.count;
    return a.kind < b.kind;
  });
  return rows;
}

Stat KindedSet::ToStat(int64_t time_made_us) const {
  Stat stat;
  stat.er = classifier.Name();
  stat.kind_header = classifier.Header();
  stat.count = static_cast<int64_t>(count());
  stat.size = static_cast<int64_t>(total_size());
  stat.time_made_us = time_made_us;
  for (Row& r : Rows()) {
    stat.rows.push_back({std::move(r.kind), static_cast<int64_t>(r.count),
                         static_cast<int64_t>(r.size)});
  }
  return stat;
}

std::string KindedSet::PartitionTable(size_t max_rows) const {
  return ToStat().Table(0, max_rows, /*label=*/true);
}

KindedSet KindedSet::Subset(const std::vector<size_t>& keep) const {
  KindedSet out;
  out.kind_names = kind_names;
  out.classifier = classifier;
  out.labels.names = labels.names;
  out.identity = identity;
  out.pruned_epoch = pruned_epoch;
  const bool has_clodo = !clodo.empty();
  const bool has_labels = !labels.of.empty();
  out.addresses.reserve(keep.size());
  out.kinds.reserve(keep.size());
  out.sizes.reserve(keep.size());
  for (size_t i : keep) {
    out.addresses.push_back(addresses[i]);
    out.kinds.push_back(kinds[i]);
    out.sizes.push_back(sizes[i]);
    if (has_clodo) out.clodo.push_back(clodo[i]);
    if (has_labels) out.labels.of.push_back(labels.of[i]);
  }
  return out;
}

std::vector<KindedSet> KindedSet::SplitByLabels(
    const std::vector<uint32_t>& wanted) const {
  constexpr uint32_t kNone = UINT32_MAX;
  const PackedUints& of = classifier.is(Classifier::kType) ? kinds
                          : classifier.is(Classifier::kClodo)
                              ? (clodo.empty() ? kinds : clodo)
                              : labels.of;
  std::vector<uint32_t> slot(LabelNames().size(), kNone);
  for (size_t w = 0; w < wanted.size(); ++w) slot[wanted[w]] = w;
  // Count first, so every part is allocated once at its size.
  std::vector<size_t> counts(wanted.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (slot[of[i]] != kNone) ++counts[slot[of[i]]];
  }
  const bool has_clodo = !clodo.empty();
  const bool has_labels = !labels.of.empty();
  std::vector<KindedSet> out(wanted.size());
  for (size_t w = 0; w < wanted.size(); ++w) {
    KindedSet& part = out[w];
    part.kind_names = kind_names;
    part.classifier = classifier;
    part.labels.names = labels.names;
    part.addresses.reserve(counts[w]);
    part.kinds.reserve(counts[w]);
    part.sizes.reserve(counts[w]);
    if (has_clodo) part.clodo.reserve(counts[w]);
    if (has_labels) part.labels.of.reserve(counts[w]);
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    const uint32_t w = slot[of[i]];
    if (w == kNone) continue;
    KindedSet& part = out[w];
    part.addresses.push_back(addresses[i]);
    part.kinds.push_back(kinds[i]);
    part.sizes.push_back(sizes[i]);
    if (has_clodo) part.clodo.push_back(clodo[i]);
    if (has_labels) part.labels.of.push_back(labels.of[i]);
  }
  return out;
}

KindedSet KindedSet::OfLabels(const std::vector<uint32_t>& wanted) const {
  std::vector<size_t> keep;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (std::binary_search(wanted.begin(), wanted.end(), LabelOf(i))) {
      keep.push_back(i);
    }
  }
  return Subset(keep);
}

KindedSet KindedSet::OfKind(const std::string& kind) const {
  const std::vector<std::string>& names = LabelNames();
  std::vector<uint32_t> wanted;
  for (uint32_t k = 0; k < names.size(); ++k) {
    if (names[k] == kind) wanted.push_back(k);
  }
  return OfLabels(wanted);
}

KindedSet KindedSet::WithStoredClassifier(const Classifier& c) const {
  KindedSet out = *this;
  out.classifier = c;
  out.labels = Labels();
  if (c.is(Classifier::kType) || c.is(Classifier::kClodo)) return out;
  const bool in_and = c.parts().size() > 1;
  absl::flat_hash_map<std::string, uint32_t> index;
  out.labels.of.reserve(count());
  std::string label;
  for (size_t i = 0; i < count(); ++i) {
    label.clear();
    for (size_t p = 0; p < c.parts().size(); ++p) {
      if (p > 0) label += " & ";
      switch (c.parts()[p]) {
        case Classifier::kType:
          label += (*kind_names)[kinds[i]];
          break;
        case Classifier::kClodo:
          label += (*kind_names)[clodo.empty() ? kinds[i] : clodo[i]];
          break;
        case Classifier::kSize:
          label += RenderSize(sizes[i], in_and);
          break;
        case Classifier::kId:
          label += RenderId(addresses[i]);
          break;
        case Classifier::kDictOf: {
          // Heapy's Type.dictof: a dict by its owner (its Clodo kind),
          // anything else "~dict".
          const std::string& type = (*kind_names)[kinds[i]];
          label += type == "dict"
                       ? (*kind_names)[clodo.empty() ? kinds[i] : clodo[i]]
                       : std::string(kNotDictKind);
          break;
        }
        default:
          label += kUnityKind;
          break;
      }
    }
    out.labels.of.push_back(Labels::Intern(label, index, *out.labels.names));
  }
  return out;
}

KindedSet KindedSet::Combine(const KindedSet& a, const KindedSet& b, char op) {
  KindedSet out;
  out.identity = Identity::Merge(a.identity, b.identity);
  // Every member was the same object at the older of the two looks.
  out.pruned_epoch = a.identity == nullptr ? b.pruned_epoch
                     : b.identity == nullptr
                         ? a.pruned_epoch
                         : std::min(a.pruned_epoch, b.pruned_epoch);
  // One kind table for the result: a's names, then b's new ones.
  *out.kind_names = *a.kind_names;
  std::unordered_map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < out.kind_names->size(); ++i) {
    index[(*out.kind_names)[i]] = i;
  }
  std::vector<uint32_t> b_kind(b.kind_names->size());
  for (uint32_t i = 0; i < b.kind_names->size(); ++i) {
    auto [it, added] = index.emplace((*b.kind_names)[i], index.size());
    if (added) out.kind_names->push_back((*b.kind_names)[i]);
    b_kind[i] = it->second;
  }
  // Clodo kinds travel too (a side without them reads its type kinds).
  const bool clodo = !a.clodo.empty() || !b.clodo.empty();
  auto take_a = [&](size_t i) {
    out.addresses.push_back(a.addresses[i]);
    out.kinds.push_back(a.kinds[i]);
    out.sizes.push_back(a.sizes[i]);
    if (clodo) out.clodo.push_back(a.clodo.empty() ? a.kinds[i] : a.clodo[i]);
  };
  auto take_b = [&](size_t j) {
    out.addresses.push_back(b.addresses[j]);
    out.kinds.push_back(b_kind[b.kinds[j]]);
    out.sizes.push_back(b.sizes[j]);
    if (clodo) {
      out.clodo.push_back(b_kind[b.clodo.empty() ? b.kinds[j] : b.clodo[j]]);
    }
  };
  size_t i = 0, j = 0;
  while (i < a.count() || j < b.count()) {
    bool in_a = i < a.count(), in_b = j < b.count();
    if (in_a && in_b && a.addresses[i] == b.addresses[j]) {
      if (op == '|' || op == '&') take_a(i);
      ++i, ++j;
    } else if (in_a && (!in_b || a.addresses[i] < b.addresses[j])) {
      if (op == '|' || op == '-' || op == '^') take_a(i);
      ++i;
    } else {
      if (op == '|' || op == '^') take_b(j);
      ++j;
    }
  }
  return out;
}

bool Identity::Same(uintptr_t address) const {
  for (const auto& w : watches) {
    const int64_t i = w->Find(address);
    if (i >= 0) return w->Same(static_cast<size_t>(i));
  }
  return true;
}

std::shared_ptr<const Identity> Identity::Merge(
    const std::shared_ptr<const Identity>& a,
    const std::shared_ptr<const Identity>& b) {
  if (a == nullptr || a == b) return b == nullptr ? a : b;
  if (b == nullptr) return a;
  auto out = std::make_shared<Identity>(*a);
  for (const auto& w : b->watches) {
    if (std::find(out->watches.begin(), out->watches.end(), w) ==
        out->watches.end()) {
      out->watches.push_back(w);
    }
  }
  return out;
}

bool SameObject(const KindedSet& set, size_t i) {
  // No watched object died since every member was found the same.
  if (set.identity == nullptr ||
      set.pruned_epoch == python::DeathWatchEpoch()) {
    return true;
  }
  return set.identity->Same(set.addresses[i]);
}

namespace {

// The indexes of `set`'s members that died among those whose key is in
// `keys` (python::DeathsSince): each key stands for the members at most
// kMaxKeyDistance bytes above it. Ascending, distinct. Where: GIL held.
std::vector<size_t> DeadAmong(const KindedSet& set,
                              const std::vector<uintptr_t>& keys) {
  std::vector<size_t> dead;
  for (uintptr_t key : keys) {
    auto it = std::lower_bound(set.addresses.begin(), set.addresses.end(), key);
    for (; it != set.addresses.end() && *it - key <= python::kMaxKeyDistance;
         ++it) {
      if (!set.identity->Same(*it)) dead.push_back(it - set.addresses.begin());
    }
  }
  std::sort(dead.begin(), dead.end());
  dead.erase(std::unique(dead.begin(), dead.end()), dead.end());
  return dead;
}

}  // namespace

std::vector<size_t> DeadMembers(const KindedSet& set) {
  std::vector<size_t> dead;
  if (set.identity == nullptr || set.count() == 0 ||
      set.pruned_epoch == python::DeathWatchEpoch()) {
    return dead;
  }
  // Only members whose key saw a death since the last look can have died:
  // when the watch remembers those deaths and they are few, look at those
  // members only (a question on a kept set of a million objects then costs
  // what died, not the set's size).
  std::vector<uintptr_t> keys;
  if (python::DeathsSince(set.pruned_epoch, &keys) &&
      keys.size() < set.count() / 8) {
    return DeadAmong(set, keys);
  }
  for (size_t i = 0; i < set.count(); ++i) {
    if (!set.identity->Same(set.addresses[i])) dead.push_back(i);
  }
  return dead;
}

namespace {

// Calls f(i) for each index i below `count` that is not in `dead` (sorted
// ascending, as DeadMembers gives it), in order.
template <typename F>
void ForEachLiveIndex(size_t count, const std::vector<size_t>& dead, F f) {
  size_t d = 0;
  for (size_t i = 0; i < count; ++i) {
    if (d < dead.size() && dead[d] == i) {
      ++d;
    } else {
      f(i);
    }
  }
}

}  // namespace

void PruneDead(KindedSet& set) {
  if (set.identity == nullptr || set.count() == 0) return;
  const uint64_t epoch = python::DeathWatchEpoch();
  if (set.pruned_epoch == epoch) return;
  const std::vector<size_t> dead = DeadMembers(set);
  if (!dead.empty()) {
    std::vector<size_t> keep;
    keep.reserve(set.count() - dead.size());
    ForEachLiveIndex(set.count(), dead, [&](size_t i) { keep.push_back(i); });
    const size_t dead_count = set.dead + dead.size();
    set = set.Subset(keep);
    set.dead = dead_count;
  }
  set.pruned_epoch = epoch;
}

absl::StatusOr<std::unique_ptr<HeapView>> HeapView::Create(Session& session) {
  auto access = session.Get<AnnexAccess>();
  if (!access.ok()) return access.status();
  python::AnnexRuntime& runtime = (*access)->runtime();
  auto engine = std::make_unique<heap::HeapEngine>(runtime.thread_states());
  // Annex's own footprint in the target never shows in a result.
  engine->Hide(heap::ObjectSet::FromUnsorted(runtime.target_footprint()));
  // Built before any walk: it imports in the annex (may run Python code).
  absl::StatusOr<TypeNamer> namer = TypeNamer::Create();
  if (!namer.ok()) return namer.status();
  // Questions are asked on the annex thread, inside its work items: an
  // interrupt of the item (Ctrl-C, a client gone) cancels the question.
  heap::QuestionStop::Limits limits;
  limits.cancelled = [&runtime] { return runtime.TakeInterrupt(); };
  engine->set_question_limits(limits);
  auto view = std::unique_ptr<HeapView>(
      new HeapView(std::move(engine), std::move(*namer),
                   runtime.thread_states(), (*access)->question_pause_limit()));
  view->set_pause_limit(view->default_pause_limit(),
                        "Options::question_pause_limit");
  absl::StatusOr<MemoryBudget*> budget = session.Get<MemoryBudget>();
  if (!budget.ok()) return budget.status();
  view->budget_ = *budget;
  // The engine's buffers kept between questions count in the budget, stay
  // within its total limit and make room for kept sets (heap/buffer_pool.h).
  // The budget outlives the view (made first), the engine stops reporting
  // when it ends, and the reclaimer holds the pool itself.
  heap::BufferPool& pool = view->engine_->buffers();
  pool.set_limit(std::min(pool.limit(), (*budget)->limits().total_bytes));
  pool.set_on_change([b = *budget](size_t kept) { b->SetReusable(kept); });
  (*budget)->SetReclaimer([p = view->engine_->shared_buffers()] { p->Trim(); });
  return view;
}

void HeapView::set_pause_limit(absl::Duration limit, const char* name) {
  heap::QuestionStop::Limits limits = engine_->question_limits();
  limits.pause_limit = limit;
  limits.limit_name = name;
  engine_->set_question_limits(limits);
}

size_t HeapView::QuestionBytes(size_t nodes, size_t edges, Work work) {
  // The graph: address and size (8 each) and an edge offset (4) per
  // object, 4 per reference, and the walk's stack and bitmap (~4).
  size_t bytes = 24 * nodes + 4 * edges;
  switch (work) {
    case Work::kWalk:
      break;
    case Work::kDescribe:
      // Kinds and Clodo kinds (4 + 4) while classifying, the packed
      // result (~7) and the address list its identity watch reads (8).
      bytes += 24 * nodes;
      break;
    case Work::kPaths:
      // Distances and the queue (4 + 4), a reverse index (4 + 4 per
      // reference).
      bytes += 12 * nodes + 4 * edges;
      break;
    case Work::kReferrers:
      // A reverse index (4 + 4 per reference), the Clodo kinds of every
      // node (Rcs, as kDescribe), (referrer, member) pairs and edge names
      // (Via, up to ~12 per reference).
      bytes += 28 * nodes + 16 * edges;
      break;
    case Work::kDominators:
      // Lengauer-Tarjan's arrays (dfn, vertex, parent, low, idom, buckets,
      // predecessors...) and the tree's counts and retained sizes: ~18
      // words per object, the predecessor lists 8 per reference.
      bytes += 72 * nodes + 8 * edges;
      break;
  }
  return bytes;
}

absl::Status HeapView::CheckQuestionMemory(const heap::HeapGraph* graph,
                                           Work work, bool edges) {
  if (budget_ == nullptr || budget_->current_owner() == 0) {
    return absl::OkStatus();  // the host's own calls: its decision
  }
  size_t nodes, refs;
  if (graph != nullptr) {
    nodes = graph->size();
    refs = graph->out_targets.size();
    last_nodes_ = nodes;
    if (refs != 0 && nodes != 0) {
      last_edges_per_node_ = static_cast<double>(refs) / nodes;
    }
  } else {
    if (last_nodes_ == 0) return absl::OkStatus();  // nothing known yet
    nodes = last_nodes_;
    refs = edges ? static_cast<size_t>(nodes * last_edges_per_node_) : 0;
  }
  static constexpr const char* kWhat[] = {
      "its walk", "its walk and the kinds of every object",
      "its walk and path search", "its walk and referrer index",
      "its walk and dominator tree"};
  const std::string what = absl::StrFormat(
      "this heap question (%s, %s %d objects and %d references)",
      kWhat[static_cast<int>(work)],
      graph != nullptr ? "over" : "estimated from the last walk's", nodes,
      refs);
  return budget_->CheckTransient(QuestionBytes(nodes, refs, work), what);
}

KindedSet HeapView::Describe(const std::vector<uintptr_t>& sorted,
                             const std::vector<uint64_t>* sizes,
                             const std::vector<uintptr_t>* owner_scan) {
  if (sizes != nullptr)
    return ClassifyObjects(namer_, sorted, *sizes, owner_scan);
  std::vector<uint64_t> s;
  s.reserve(sorted.size());
  for (uintptr_t a : sorted) {
    auto size = engine_->SizeOf(reinterpret_cast<PyObject*>(a));
    s.push_back(size.ok() ? *size : 0);
  }
  return ClassifyObjects(namer_, sorted, s, owner_scan);
}

namespace {

// Per type met: its kind (an index into the kind names, assigned in order
// of first use) and how its instances hold an attribute dict, behind a
// direct-mapped cache (a heap has few types and millions of objects).
// Where: GIL held; the types alive.
class TypeTable {
 public:
  struct Entry {
    uint32_t kind = kNoKind;
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
  uint32_t Kind(PyTypeObject* type) {
    Entry& e = Get(type);
    if (e.kind == kNoKind) {
      e.kind = static_cast<uint32_t>(names_.size());
      names_.push_back(namer_.Name(type));
    }
    return e.kind;
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

// How far ahead of the scan objects are prefetched: the scan runs in
// address order, but a heap's objects sit in pools of different size
// classes, so the hardware prefetcher alone loses the stream.
constexpr size_t kPrefetchAhead = 16;

}  // namespace

KindedSet ClassifyObjects(const TypeNamer& namer,
                          const std::vector<uintptr_t>& sorted,
                          const std::vector<uint64_t>& sizes,
                          const std::vector<uintptr_t>* owner_scan) {
  KindedSet out;
  const size_t n = sorted.size();
  // The kinds are found into plain vectors, then packed (packed_columns.h)
  // with the addresses and sizes: the result is what a kept set holds.
  auto pack = [&](KindedSet& set, const std::vector<uint32_t>& kinds,
                  const std::vector<uint32_t>* clodo) {
    set.addresses = PackedAddresses::From(sorted);
    set.sizes = PackedSizes::From(sizes);
    set.kinds = PackedUints::From(kinds);
    if (clodo != nullptr) set.clodo = PackedUints::From(*clodo);
  };
  std::vector<uint32_t> kinds;
  heap::ReserveHuge(kinds, n);
  kinds.resize(n);
  TypeTable types(namer, *out.kind_names);
  if (owner_scan == nullptr) {
    for (size_t i = 0; i < n; ++i) {
      if (i + kPrefetchAhead < n) {
        __builtin_prefetch(reinterpret_cast<void*>(sorted[i + kPrefetchAhead]));
      }
      kinds[i] = types.Kind(Py_TYPE(reinterpret_cast<PyObject*>(sorted[i])));
    }
    pack(out, kinds, nullptr);
    return out;
  }
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
  std::vector<uint32_t> clodo_of;
  heap::ReserveHuge(clodo_of, n);
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
  auto record_owner = [&](PyObject* obj, DictHolding holding) {
    PyObject* dict = OwnedDict(obj, holding);
    if (dict == nullptr) return;
    PyTypeObject* type = Py_TYPE(obj);
    if (type != last_owner) {
      auto [it, added] = owner_number.emplace(type, owner_types.size());
      if (added) owner_types.push_back(type);
      last_owner = type;
      last_number = it->second;
    }
    const uintptr_t d = reinterpret_cast<uintptr_t>(dict);
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
  const bool fused = owner_scan == &sorted;
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) {
      __builtin_prefetch(reinterpret_cast<void*>(sorted[i + kPrefetchAhead]));
    }
    PyObject* obj = reinterpret_cast<PyObject*>(sorted[i]);
    PyTypeObject* type = Py_TYPE(obj);
    kinds[i] = types.Kind(type);
    if (fused) {
      DictHolding holding = types.Holding(type);
      if (holding != DictHolding::kNone) record_owner(obj, holding);
    }
  }
  if (!fused) {
    const std::vector<uintptr_t>& scan = *owner_scan;
    for (size_t i = 0; i < scan.size(); ++i) {
      if (i + kPrefetchAhead < scan.size()) {
        __builtin_prefetch(reinterpret_cast<void*>(scan[i + kPrefetchAhead]));
      }
      PyObject* obj = reinterpret_cast<PyObject*>(scan[i]);
      DictHolding holding = types.Holding(Py_TYPE(obj));
      if (holding != DictHolding::kNone) record_owner(obj, holding);
    }
  }
  for (const auto& [a, code] : pending) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), a);
    place(it != sorted.end() && *it == a ? it - sorted.begin() : -1, code);
  }
  const uint32_t dict_kind = types.KindIfAny(&PyDict_Type);
  if (dict_kind == TypeTable::kNoKind) {
    pack(out, kinds, &kinds);
    return out;
  }
  absl::flat_hash_map<std::string, uint32_t> index_of_name;
  for (uint32_t k = 0; k < out.kind_names->size(); ++k) {
    index_of_name.emplace((*out.kind_names)[k], k);
  }
  const uint32_t no_owner =
      Labels::Intern(kNoOwnerDict, index_of_name, *out.kind_names);
  // "dict of X" names in order of first use in `sorted`, as kinds are.
  std::vector<uint32_t> dict_of(owner_types.size(), TypeTable::kNoKind);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t kind = kinds[i];
    uint32_t& clodo = clodo_of[i];
    if (kind != dict_kind) {
      clodo = kind;
    } else if (clodo == 0) {
      clodo = no_owner;
    } else {
      uint32_t& label = dict_of[clodo - 1];
      if (label == TypeTable::kNoKind) {
        label = Labels::Intern("dict of " + namer.Name(owner_types[clodo - 1]),
                               index_of_name, *out.kind_names);
      }
      clodo = label;
    }
  }
  pack(out, kinds, &clodo_of);
  return out;
}

absl::Status HeapView::Keep(KindedSet& set,
                            const std::vector<uintptr_t>* sorted) {
  python::FlushDeathWatch();
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> w =
      sorted != nullptr
          ? python::WatchedObjects::Watch(*sorted)
          : python::WatchedObjects::Watch(set.addresses.ToVector());
  if (!w.ok()) return w.status();
  auto identity = std::make_shared<Identity>();
  identity->watches.push_back(std::move(*w));
  set.identity = std::move(identity);
  set.pruned_epoch = python::DeathWatchEpoch();
  return absl::OkStatus();
}

namespace {

// Indexes of `sorted` that are not live members of `ref` (same object as
// when the reference was kept). Where: GIL held.
std::vector<size_t> NotInReference(const std::vector<uintptr_t>& sorted,
                                   const KindedSet& ref) {
  std::vector<size_t> out;
  out.reserve(sorted.size());
  size_t j = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    while (j < ref.count() && ref.addresses[j] < sorted[i]) ++j;
    if (j < ref.count() && ref.addresses[j] == sorted[i] &&
        SameObject(ref, j)) {
      continue;  // the very object of the reference point
    }
    out.push_back(i);
  }
  return out;
}

}  // namespace

absl::StatusOr<KindedSet> HeapView::Heap(const ReferencePoint* ref, bool keep,
                                         heap::Sizing sizing,
                                         heap::HeapGraph* graph_out) {
  if (graph_out != nullptr && ref != nullptr) {
    return absl::InvalidArgumentError("Heap: a graph only without a reference");
  }
  // One question: the objects found are read (and watched) before the GIL
  // can change hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  if (absl::Status s =
          CheckQuestionMemory(nullptr, Work::kDescribe, graph_out != nullptr);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<heap::HeapGraph> graph;
  {
    heap::HeapEngine::ScopedSizing scoped(*engine_, sizing);
    graph =
        engine_->Graph(graph_out != nullptr ? heap::GraphOptions()
                                            : heap::GraphOptions::NodesOnly());
  }
  if (!graph.ok()) return graph.status();
  if (absl::Status s = CheckQuestionMemory(&*graph, Work::kDescribe); !s.ok()) {
    return s;
  }
  KindedSet out;
  std::vector<uintptr_t> fresh;
  if (ref == nullptr) {
    out = Describe(graph->addresses, &graph->sizes, &graph->addresses);
  } else {
    std::vector<uint64_t> sizes;
    for (size_t v : NotInReference(graph->addresses, ref->reachable)) {
      fresh.push_back(graph->addresses[v]);
      sizes.push_back(graph->sizes[v]);
    }
    out = Describe(fresh, &sizes, &graph->addresses);
  }
  // The types met, for CheckTypeName (hp.Type('name')) without a walk.
  // Clodo's names of dicts ("dict of X", "dict (no owner)") share the
  // table and are no type names: left out.
  absl::flat_hash_set<std::string> type_names;
  for (const std::string& name : *out.kind_names) {
    if (!absl::StartsWith(name, "dict of ") && name != kNoOwnerDict) {
      type_names.insert(name);
    }
  }
  RememberTypeNames(std::move(type_names));
  if (keep) {
    absl::Status s = Keep(out, ref == nullptr ? &graph->addresses : &fresh);
    if (!s.ok()) return s;
  }
  if (graph_out != nullptr) *graph_out = std::move(*graph);
  return out;
}

absl::StatusOr<KindedSet> HeapView::HeapU(const ReferencePoint* ref, bool keep,
                                          UnreachablePart part) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  if (absl::Status s = CheckQuestionMemory(nullptr, Work::kDescribe, false);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<heap::ObjectSet> set;
  if (part == UnreachablePart::kAll) {
    set = engine_->Unreachable();
  } else {
    absl::StatusOr<heap::UnreachableParts> parts = engine_->UnreachableSplit();
    if (!parts.ok()) return parts.status();
    set = part == UnreachablePart::kGarbage ? std::move(parts->garbage)
                                            : std::move(parts->held);
  }
  if (!set.ok()) return set.status();
  // Found in the gc lists during this GIL hold: alive now. The owner of an
  // unreachable dict is unreachable too, so the owners are among them.
  std::vector<uintptr_t> objects = set->ToVector();
  KindedSet out;
  std::vector<uintptr_t> fresh;
  if (ref == nullptr) {
    out = Describe(objects, nullptr, &objects);
  } else {
    for (size_t i : NotInReference(objects, ref->unreachable)) {
      fresh.push_back(objects[i]);
    }
    out = Describe(fresh, nullptr, &objects);
  }
  if (keep) {
    absl::Status s = Keep(out, ref == nullptr ? &objects : &fresh);
    if (!s.ok()) return s;
  }
  return out;
}

absl::StatusOr<KindedSet> HeapView::Owners(const KindedSet& set) {
  // One question: every address read below was found alive by its walk.
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  // The dict members still alive as the objects seen (sorted, as `set`).
  std::vector<uintptr_t> dicts;
  for (size_t i = 0; i < set.count(); ++i) {
    if (set.kind_names->at(set.kinds[i]) == "dict" && SameObject(set, i)) {
      dicts.push_back(set.addresses[i]);
    }
  }
  KindedSet out;
  if (dicts.empty()) return out;
  absl::StatusOr<heap::HeapGraph> graph =
      engine_->Graph(heap::GraphOptions::NodesOnly());
  if (!graph.ok()) return graph.status();
  // Owners hold their dict from their side: one pass over the live objects
  // reads each one's attribute dict pointer (nothing is created: an
  // instance whose attributes are still inline owns no dict object).
  absl::flat_hash_map<PyTypeObject*, DictHolding> holdings;
  auto owners_among = [&](const std::vector<uintptr_t>& objects,
                          std::vector<uintptr_t>& found) {
    for (uintptr_t a : objects) {
      PyObject* obj = reinterpret_cast<PyObject*>(a);
      PyTypeObject* type = Py_TYPE(obj);
      auto it = holdings.find(type);
      if (it == holdings.end()) {
        it = holdings.emplace(type, DictHoldingOf(type)).first;
      }
      if (it->second == DictHolding::kNone) continue;
      PyObject* dict = OwnedDict(obj, it->second);
      if (dict != nullptr &&
          std::binary_search(dicts.begin(), dicts.end(),
                             reinterpret_cast<uintptr_t>(dict))) {
        found.push_back(a);
      }
    }
  };
  std::vector<uintptr_t> found;
  owners_among(graph->addresses, found);
  // A dict found only among the unreachable gc objects has its owner there.
  const bool all_reachable =
      std::all_of(dicts.begin(), dicts.end(),
                  [&](uintptr_t d) { return graph->Find(d) >= 0; });
  std::vector<uintptr_t> unreachable;
  if (!all_reachable) {
    absl::StatusOr<heap::ObjectSet> u = engine_->Unreachable();
    if (!u.ok()) return u.status();
    unreachable = u->ToVector();
    owners_among(unreachable, found);
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  std::vector<uintptr_t> scan = graph->addresses;
  if (!unreachable.empty()) {
    scan.insert(scan.end(), unreachable.begin(), unreachable.end());
    std::sort(scan.begin(), scan.end());
  }
  out = Describe(found, nullptr, &scan);
  absl::Status s = Keep(out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<ReferencePoint> HeapView::MakeReferencePoint() {
  // One question: both parts describe one moment.
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  ReferencePoint ref;
  absl::StatusOr<KindedSet> reachable = Heap(nullptr, true);
  if (!reachable.ok()) return reachable.status();
  absl::StatusOr<KindedSet> unreachable = HeapU(nullptr, true);
  if (!unreachable.ok()) return unreachable.status();
  ref.reachable = std::move(*reachable);
  ref.unreachable = std::move(*unreachable);
  return ref;
}

absl::StatusOr<KindedSet> HeapView::FromAddresses(
    std::vector<uintptr_t> addresses) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()),
                  addresses.end());
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  if (absl::Status s = CheckQuestionMemory(nullptr, Work::kWalk, false);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<heap::HeapGraph> graph =
      engine_->Graph(heap::GraphOptions::NodesOnly());
  if (!graph.ok()) return graph.status();
  if (absl::Status s = CheckQuestionMemory(&*graph, Work::kWalk); !s.ok()) {
    return s;
  }
  std::vector<uintptr_t> live, missing;
  std::vector<uint64_t> sizes;
  size_t j = 0;
  for (uintptr_t a : addresses) {
    while (j < graph->size() && graph->addresses[j] < a) ++j;
    if (j < graph->size() && graph->addresses[j] == a) {
      live.push_back(a);
      sizes.push_back(graph->sizes[j]);
    } else {
      missing.push_back(a);
    }
  }
  KindedSet out = Describe(live, &sizes, &graph->addresses);
  if (!missing.empty()) {
    absl::StatusOr<heap::ObjectSet> u = engine_->Unreachable();
    if (!u.ok()) return u.status();
    std::vector<uintptr_t> unreachable;
    for (uintptr_t a : missing) {
      if (u->contains(a)) unreachable.push_back(a);
    }
    if (!unreachable.empty()) {
      std::vector<uintptr_t> all = u->ToVector();
      out = KindedSet::Combine(out, Describe(unreachable, nullptr, &all), '|');
    }
  }
  absl::Status s = Keep(out);
  if (!s.ok()) return s;
  return out;
}

heap::NodeSet LiveNodes(const heap::HeapGraph& graph, const KindedSet& set) {
  // The dead found as PruneDead finds them (DeadMembers: one look near the
  // deaths), not one identity lookup per member.
  const std::vector<size_t> dead = DeadMembers(set);
  heap::NodeSet nodes;
  ForEachLiveIndex(set.count(), dead, [&](size_t i) {
    int64_t v = graph.Find(set.addresses[i]);
    if (v >= 0) nodes.push_back(static_cast<uint32_t>(v));
  });
  return nodes;
}

absl::StatusOr<MemberTexts> HeapView::ReadTexts(
    const KindedSet& set, const std::function<bool(size_t)>& want) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  if (absl::Status s = CheckQuestionMemory(nullptr, Work::kWalk, false);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<heap::HeapGraph> graph =
      engine_->Graph(heap::GraphOptions::NodesOnly());
  if (!graph.ok()) return graph.status();
  MemberTexts out;
  out.alive.assign(set.count(), 0);
  std::optional<heap::ObjectSet> unreachable;  // looked up when needed
  for (size_t i = 0; i < set.count(); ++i) {
    const uintptr_t a = set.addresses[i];
    if (graph->Find(a) < 0) {
      if (!unreachable) {
        absl::StatusOr<heap::ObjectSet> u = engine_->Unreachable();
        if (!u.ok()) return u.status();
        unreachable = std::move(*u);
      }
      if (!unreachable->contains(a)) continue;
    }
    if (!SameObject(set, i)) continue;  // died; a new object may sit there
    PyObject* obj = reinterpret_cast<PyObject*>(a);
    // Still the same object? Same kind as recorded (an address can be reused).
    if (namer_.Name(Py_TYPE(obj)) != (*set.kind_names)[set.kinds[i]]) continue;
    out.alive[i] = 1;
    if (want(i)) out.texts.emplace_back(i, DescribeObject(obj));
  }
  return out;
}

absl::StatusOr<KindedSet> HeapView::Reach(
    const KindedSet& set,
    const std::function<void(PyObject*, std::vector<uintptr_t>*)>& reach) {
  // One question: members found alive are read before the GIL can change
  // hands, and what they hold is confirmed by the walk of the same hold.
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<MemberTexts> alive =
      ReadTexts(set, [](size_t) { return false; });
  if (!alive.ok()) return alive.status();
  std::vector<uintptr_t> reached;
  for (size_t i = 0; i < set.count(); ++i) {
    if (alive->alive[i]) {
      reach(reinterpret_cast<PyObject*>(set.addresses[i]), &reached);
    }
  }
  return FromAddresses(std::move(reached));
}

namespace {

// x.byid's line of member i: address, kind, size and the value or length;
// `text` null: the member is no longer alive. Plain data: any thread.
std::string ByIdLine(const KindedSet& set, size_t i, const ObjectText* text) {
  std::string line =
      absl::StrFormat("0x%x %s %d bytes", set.addresses[i],
                      (*set.kind_names)[set.kinds[i]], set.sizes[i]);
  if (text == nullptr) {
    line += " (no longer alive)";
  } else if (!text->value.empty()) {
    absl::StrAppend(&line, " ", text->value);
  } else if (text->length >= 0) {
    absl::StrAppend(&line, " len=", text->length);
  }
  return line;
}

}  // namespace

absl::StatusOr<ByIdResult> HeapView::ById(const KindedSet& set, size_t limit) {
  size_t picked = 0;
  absl::StatusOr<MemberTexts> texts =
      ReadTexts(set, [&](size_t) { return picked++ < limit; });
  if (!texts.ok()) return texts.status();
  ByIdResult out;
  std::vector<size_t> live;
  for (size_t i = 0; i < set.count(); ++i) {
    if (texts->alive[i]) live.push_back(i);
  }
  for (const auto& [i, text] : texts->texts) {
    out.lines.push_back(ByIdLine(set, i, &text));
  }
  out.live = set.Subset(live);
  out.live.classifier = Classifier(Classifier::kId);
  return out;
}

absl::StatusOr<std::vector<std::string>> HeapView::ByIdLines(
    const KindedSet& set, size_t first, size_t end) {
  absl::StatusOr<MemberTexts> texts =
      ReadTexts(set, [&](size_t i) { return i >= first && i < end; });
  if (!texts.ok()) return texts.status();
  std::vector<std::string> lines;
  size_t k = 0;
  for (size_t i = first; i < end && i < set.count(); ++i) {
    while (k < texts->texts.size() && texts->texts[k].first < i) ++k;
    const bool have = k < texts->texts.size() && texts->texts[k].first == i;
    lines.push_back(ByIdLine(set, i, have ? &texts->texts[k].second : nullptr));
  }
  return lines;
}

namespace {

// The labels of sets of small indexes (referrer kinds, edge texts): a slot
// per distinct set, kNoLabel until the caller renders that set's label.
// Sets of one index, the common case, are slots of an array. Pure C++.
class SetLabels {
 public:
  static constexpr uint32_t kNoLabel = UINT32_MAX;
  explicit SetLabels(size_t indexes) : one_(indexes, kNoLabel) {}
  // Sorts `ids` (each below `indexes`) and drops repeats, then returns the
  // slot of that set (valid until the next call).
  uint32_t& Slot(std::vector<uint32_t>& ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.empty()) return empty_;
    if (ids.size() == 1) return one_[ids[0]];
    return many_.try_emplace(ids, kNoLabel).first->second;
  }

 private:
  uint32_t empty_ = kNoLabel;
  std::vector<uint32_t> one_;
  absl::flat_hash_map<std::vector<uint32_t>, uint32_t> many_;
};

// i when `text` is "[i]" with i written as Python writes an int (no sign,
// no leading zero) and below 2^24 (the item of a list or tuple, or a
// dict's value under an int key: the same text), else -1.
int64_t ItemIndexOf(const std::string& text) {
  const size_t digits = text.size() - 2;
  if (text.size() < 3 || digits > 7 || text.front() != '[' ||
      text.back() != ']' || (text[1] == '0' && digits > 1)) {
    return -1;
  }
  int64_t i = 0;
  for (size_t k = 1; k <= digits; ++k) {
    const char c = text[k];
    if (c < '0' || c > '9') return -1;
    i = i * 10 + (c - '0');
  }
  return i < (int64_t{1} << 24) ? i : -1;
}

// The node of each member of `set` in `graph` (-1: not in it). Both are
// sorted by address: one merge when the set is a fair part of the graph,
// else a binary search per member. Pure C++, any thread.
std::vector<int64_t> NodesOf(const heap::HeapGraph& graph,
                             const KindedSet& set) {
  std::vector<int64_t> node_of(set.count(), -1);
  const size_t n = graph.size();
  if (set.count() * 32 < n) {
    for (size_t i = 0; i < set.count(); ++i) {
      node_of[i] = graph.Find(set.addresses[i]);
    }
    return node_of;
  }
  const std::vector<uintptr_t> addresses = set.addresses.ToVector();
  size_t j = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    while (j < n && graph.addresses[j] < addresses[i]) ++j;
    if (j == n) break;
    if (graph.addresses[j] == addresses[i])
      node_of[i] = static_cast<int64_t>(j);
  }
  return node_of;
}

}  // namespace

absl::StatusOr<LiveKinds> HeapView::ClassifyParts(const KindedSet& set,
                                                  const Classifier& c) {
  const bool referrers = c.NeedsReferrers();
  if (absl::Status s = CanLabel(c); !s.ok()) return s;
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  // Members not reachable from the roots (heapu) are in the graph too, with
  // their real referrers, when there are any.
  heap::GraphOptions graph_options;
  graph_options.scope = heap::GraphOptions::Scope::kLiveIfNeeded;
  std::vector<uintptr_t> wanted = set.addresses.ToVector();
  // Members that died need no node: left out, so that a dead member's
  // free address does not make the walk look for unreachable objects.
  const std::vector<size_t> dead = DeadMembers(set);
  if (!dead.empty()) {
    size_t kept = 0;
    ForEachLiveIndex(wanted.size(), dead,
                     [&](size_t i) { wanted[kept++] = wanted[i]; });
    wanted.resize(kept);
  }
  graph_options.wanted = &wanted;
  const Work work = referrers ? Work::kReferrers : Work::kWalk;
  if (absl::Status s = CheckQuestionMemory(nullptr, work); !s.ok()) return s;
  absl::StatusOr<heap::HeapGraph> graph = engine_->Graph(graph_options);
  if (!graph.ok()) return graph.status();
  if (absl::Status s = CheckQuestionMemory(&*graph, work); !s.ok()) return s;
  return LabelParts(*graph, nullptr, set, c);
}

absl::Status HeapView::CanLabel(const Classifier& c) {
  for (size_t i = 0; i < c.parts().size(); ++i) {
    const Classifier::Part p = c.parts()[i];
    if (p == Classifier::kRefdby) {
      if (absl::Status s = CanLabel(*c.base(i)); !s.ok()) return s;
    }
    if (p == Classifier::kProd && !python::TracemallocIsTracing()) {
      return absl::FailedPreconditionError(
          "byprod needs the target's tracemalloc: it is not tracing now. "
          "Start it in the target (tracemalloc.start(), or "
          "PYTHONTRACEMALLOC=1) before the objects of interest are "
          "allocated.");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LiveKinds> HeapView::LabelParts(
    const heap::HeapGraph& graph_ref, const heap::ReverseIndex* reverse_in,
    const KindedSet& set, const Classifier& c, bool force_in_and) {
  if (absl::Status s = CanLabel(c); !s.ok()) return s;
  const std::vector<Classifier::Part>& parts = c.parts();
  const heap::HeapGraph* graph = &graph_ref;
  // From here to the end no Python code runs and no thread state is
  // swapped (the question holds the target current), so the GIL stays held
  // and what the walk found stays alive.
  const std::vector<int64_t> node_of = NodesOf(*graph, set);
  const std::vector<size_t> dead = DeadMembers(set);
  // The type each kind was last confirmed for: one name comparison per
  // (kind, type) met, not per member.
  std::vector<PyTypeObject*> type_of_kind(set.kind_names->size(), nullptr);
  absl::flat_hash_map<PyTypeObject*, std::string> type_names;
  std::vector<size_t> keep;
  std::vector<int64_t> keep_node;
  keep.reserve(set.count());
  keep_node.reserve(set.count());
  size_t d = 0;
  for (size_t i = 0; i < set.count(); ++i) {
    if (d < dead.size() && dead[d] == i) {  // died since the set was made
      ++d;
      continue;
    }
    if (node_of[i] < 0) continue;  // dead (heapu members are nodes)
    // Still the same object? Same type as recorded (addresses are reused).
    PyTypeObject* type =
        Py_TYPE(reinterpret_cast<PyObject*>(graph->addresses[node_of[i]]));
    const uint32_t kind = set.kinds[i];
    if (type_of_kind[kind] != type) {
      auto [it, added] = type_names.emplace(type, std::string());
      if (added) it->second = namer_.Name(type);
      if (it->second != (*set.kind_names)[kind]) continue;
      type_of_kind[kind] = type;
    }
    keep.push_back(i);
    keep_node.push_back(node_of[i]);
  }
  LiveKinds out;
  if (keep.size() == set.count()) {  // every member: the columns as they are
    out.live = set;
    out.live.dead = 0;
  } else {
    out.live = set.Subset(keep);
  }
  const size_t n = keep.size();
  // Polled per member (and per referrer for Via): past the pause limit, or
  // cancelled, the question ends with its status and the target runs.
  heap::QuestionStop& stop = engine_->question_stop();

  // Rcs and refdby read each member's referrers from a reverse index; Via
  // without the caller's index goes through the forward edges.
  bool rcs = false;
  for (Classifier::Part p : parts) {
    rcs |= p == Classifier::kRcs || p == Classifier::kRefdby;
  }
  heap::ReverseIndex own_reverse;
  if (rcs && reverse_in == nullptr) {
    own_reverse = heap::ReverseIndex::Build(*graph);
  }
  const heap::ReverseIndex& reverse =
      reverse_in != nullptr ? *reverse_in : own_reverse;
  // Rcs and X.refdby: the kind of every node under the base classifier
  // (Clodo for Rcs), rendered as in `graph_base_in_and`.
  PackedUints graph_clodo;
  std::shared_ptr<std::vector<std::string>> graph_names;
  std::optional<Classifier> graph_base;
  bool graph_base_in_and = false;

  for (size_t part_index = 0; part_index < parts.size(); ++part_index) {
    const Classifier::Part part = parts[part_index];
    Labels labels;
    absl::flat_hash_map<std::string, uint32_t> index;
    labels.of.resize(n);
    auto intern = [&](const std::string& s) {
      return Labels::Intern(s, index, *labels.names);
    };
    const bool in_and = force_in_and || parts.size() > 1;
    switch (part) {
      case Classifier::kModule: {
        for (size_t k = 0; k < n; ++k) {
          PyObject* obj = reinterpret_cast<PyObject*>(out.live.addresses[k]);
          std::string name = kNotModuleKind;
          if (PyModule_Check(obj)) {
            PyObject* dict = PyModule_GetDict(obj);
            PyObject* s =
                dict ? PyDict_GetItemString(dict, "__name__") : nullptr;
            const char* u =
                (s && PyUnicode_Check(s)) ? PyUnicode_AsUTF8(s) : nullptr;
            name = u ? u : "?";
            PyErr_Clear();
          }
          labels.of.Set(k, intern(name));
        }
        break;
      }
      case Classifier::kProd: {
        std::string file;
        int line = 0;
        for (size_t k = 0; k < n; ++k) {
          PyObject* obj = reinterpret_cast<PyObject*>(out.live.addresses[k]);
          labels.of.Set(k, intern(python::TracemallocSite(obj, &file, &line)
                                      ? absl::StrCat(file, ":", line)
                                      : kUnknownProducer));
        }
        break;
      }
      case Classifier::kMro: {
        // The names of the type's MRO, one per line (Type kinds' orders).
        for (size_t k = 0; k < n; ++k) {
          PyTypeObject* type =
              Py_TYPE(reinterpret_cast<PyObject*>(out.live.addresses[k]));
          labels.of.Set(k, intern(absl::StrJoin(MroNames(namer_, type), "\n")));
        }
        break;
      }
      case Classifier::kRcs:
      case Classifier::kRefdby: {
        const Classifier base = part == Classifier::kRcs
                                    ? Classifier(Classifier::kClodo)
                                    : *c.base(part_index);
        if (graph_names == nullptr || !(*graph_base == base) ||
            graph_base_in_and != in_and) {
          absl::Status s = NodeKinds(*graph, reverse, base, in_and,
                                     &graph_clodo, &graph_names);
          if (!s.ok()) return s;
          graph_base = base;
          graph_base_in_and = in_and;
        }
        // Each distinct set of referrer kinds is rendered and interned
        // once: a member looks its set up by kind indexes.
        SetLabels sets(graph_names->size());
        std::vector<uint32_t> kinds;
        std::vector<std::string> kind_names;
        for (size_t k = 0; k < n; ++k) {
          if (stop.Poll()) return stop.status();
          kinds.clear();
          if (keep_node[k] >= 0) {
            uint32_t v = static_cast<uint32_t>(keep_node[k]);
            for (uint32_t e = reverse.in_begin[v]; e < reverse.in_begin[v + 1];
                 ++e) {
              kinds.push_back(graph_clodo[reverse.in_sources[e]]);
            }
          }
          uint32_t& label = sets.Slot(kinds);
          if (label == SetLabels::kNoLabel) {
            kind_names.clear();
            for (uint32_t kk : kinds) kind_names.push_back((*graph_names)[kk]);
            label = intern(RenderRcs(kind_names, in_and));
          }
          labels.of.Set(k, label);
        }
        break;
      }
      case Classifier::kVia: {
        // Each referrer's edges to members are named together with the
        // target swapped in (one scan of a container holding many of
        // them), each distinct edge text gets an index as it is named, and
        // each distinct set of texts is rendered and interned once (most
        // members are held one way: an array lookup). Referrers come from
        // the graph's edges in node order (a member's referrers from the
        // reverse index when the caller has one).
        constexpr uint32_t kNone = UINT32_MAX;
        std::vector<std::pair<uint32_t, uint32_t>> held;  // (member, text)
        // One pair per edge into a member at most: reserved (huge pages)
        // rather than grown by doubling, which copied and faulted in twice
        // its size.
        heap::ReserveHuge(held, std::min<size_t>(graph->out_targets.size(),
                                                 size_t{8} * n + 64));
        absl::flat_hash_map<std::string, uint32_t> text_index;
        std::vector<uint32_t> item_text;  // "[i]" by i, without hashing
        std::vector<std::string> texts;
        {
          std::vector<uint32_t> targets;
          std::vector<PyObject*> tos;
          std::vector<heap::Edge> named;
          // Names the edges from node u to the members in `targets`.
          auto name_from = [&](uint32_t u) {
            tos.clear();
            for (uint32_t k : targets) {
              tos.push_back(
                  reinterpret_cast<PyObject*>(graph->addresses[keep_node[k]]));
            }
            heap::DescribeEdgesFrom(
                reinterpret_cast<PyObject*>(graph->addresses[u]), tos, &named);
            for (size_t i = 0; i < targets.size(); ++i) {
              std::string& text = named[i].text;
              const uint32_t next = static_cast<uint32_t>(texts.size());
              uint32_t id;
              if (const int64_t item = ItemIndexOf(text); item >= 0) {
                if (static_cast<size_t>(item) >= item_text.size()) {
                  item_text.resize(
                      std::max<size_t>(item + 1, 2 * item_text.size()), kNone);
                }
                uint32_t& slot = item_text[item];
                if (slot == kNone) {
                  slot = next;
                  texts.push_back(std::move(text));
                }
                id = slot;
              } else {
                auto [it, added] = text_index.try_emplace(text, next);
                if (added) texts.push_back(std::move(text));
                id = it->second;
              }
              held.emplace_back(targets[i], id);
            }
          };
          python::ScopedTargetSwap swap(ts_);
          if (reverse_in == nullptr) {
            std::vector<uint32_t> member_of(graph->size(), kNone);
            for (size_t k = 0; k < n; ++k) {
              member_of[keep_node[k]] = static_cast<uint32_t>(k);
            }
            std::vector<uint32_t> seen(n, kNone);  // last referrer named
            for (uint32_t u = 0; u < graph->size(); ++u) {
              if (stop.Poll()) return stop.status();
              targets.clear();
              for (uint32_t e = graph->out_begin[u];
                   e < graph->out_begin[u + 1]; ++e) {
                const uint32_t k = member_of[graph->out_targets[e]];
                if (k == kNone || seen[k] == u) continue;  // parallel edges
                seen[k] = u;
                targets.push_back(k);
              }
              if (!targets.empty()) name_from(u);
            }
          } else {
            std::vector<std::pair<uint32_t, uint32_t>> by_source;
            for (size_t k = 0; k < n; ++k) {
              const uint32_t v = static_cast<uint32_t>(keep_node[k]);
              uint32_t last = kNone;
              for (uint32_t e = reverse.in_begin[v];
                   e < reverse.in_begin[v + 1]; ++e) {
                const uint32_t u = reverse.in_sources[e];
                if (u == last) continue;  // ascending: parallel edges adjacent
                last = u;
                by_source.emplace_back(u, static_cast<uint32_t>(k));
              }
            }
            std::sort(by_source.begin(), by_source.end());
            for (size_t a = 0; a < by_source.size();) {
              if (stop.Poll()) return stop.status();
              const uint32_t u = by_source[a].first;
              targets.clear();
              for (; a < by_source.size() && by_source[a].first == u; ++a) {
                targets.push_back(by_source[a].second);
              }
              name_from(u);
            }
          }
        }
        // The text indexes bucketed by member (counting sort).
        std::vector<uint32_t> first(n + 1, 0);
        for (const auto& h : held) ++first[h.first + 1];
        for (size_t k = 0; k < n; ++k) first[k + 1] += first[k];
        std::vector<uint32_t> by_member(held.size());
        {
          std::vector<uint32_t> next(first.begin(), first.end() - 1);
          for (const auto& h : held) by_member[next[h.first]++] = h.second;
        }
        SetLabels sets(texts.size());
        std::vector<uint32_t> ids;
        std::vector<std::string> relations;
        for (size_t k = 0; k < n; ++k) {
          if (stop.Poll()) return stop.status();
          ids.assign(by_member.begin() + first[k],
                     by_member.begin() + first[k + 1]);
          uint32_t& label = sets.Slot(ids);
          if (label == SetLabels::kNoLabel) {
            // Distinct sets of distinct texts render distinct labels (each
            // text a Python literal, two or more joined by ", "): no
            // lookup by the label's text.
            relations.clear();
            for (uint32_t t : ids) relations.push_back(texts[t]);
            label = static_cast<uint32_t>(labels.names->size());
            labels.names->push_back(RenderVia(relations, in_and));
          }
          labels.of.Set(k, label);
        }
        break;
      }
      default: {
        // Parts of recorded data.
        KindedSet one = out.live.WithStoredClassifier(Classifier(part));
        if (part == Classifier::kType || part == Classifier::kClodo ||
            part == Classifier::kDictOf) {
          for (size_t k = 0; k < n; ++k) {
            labels.of.Set(k, intern(one.LabelNames()[one.LabelOf(k)]));
          }
        } else if (part == Classifier::kSize) {
          for (size_t k = 0; k < n; ++k) {
            labels.of.Set(k, intern(RenderSize(out.live.sizes[k], in_and)));
          }
        } else {
          labels = std::move(one.labels);
        }
        break;
      }
    }
    out.parts.push_back(std::move(labels));
  }
  return out;
}

absl::Status HeapView::NodeKinds(
    const heap::HeapGraph& graph, const heap::ReverseIndex& reverse,
    const Classifier& base, bool in_and, PackedUints* kinds,
    std::shared_ptr<std::vector<std::string>>* names) {
  KindedSet all = Describe(graph.addresses, &graph.sizes, &graph.addresses);
  if (base.is(Classifier::kClodo)) {
    *kinds = std::move(all.clodo);
    *names = all.kind_names;
    return absl::OkStatus();
  }
  const bool single = base.parts().size() == 1;
  if (single && !base.NeedsLiveObjects() &&
      !(in_and && base.is(Classifier::kSize))) {
    // Recorded data (Type, Size, Id, Unity, Type.dictof): no per-node
    // check against the graph is needed.
    if (base.is(Classifier::kType)) {
      *kinds = std::move(all.kinds);
      *names = all.kind_names;
      return absl::OkStatus();
    }
    KindedSet stored = all.WithStoredClassifier(base);
    *kinds = std::move(stored.labels.of);
    *names = stored.labels.names;
    return absl::OkStatus();
  }
  // Every node is alive (this question's walk found it), so LabelParts
  // keeps them all, in the graph's order.
  absl::StatusOr<LiveKinds> labelled =
      LabelParts(graph, &reverse, all, base, /*force_in_and=*/single && in_and);
  if (!labelled.ok()) return labelled.status();
  if (labelled->live.count() != graph.addresses.size()) {
    return absl::InternalError("refdby: the graph's nodes changed");
  }
  if (single) {
    *kinds = std::move(labelled->parts[0].of);
    *names = labelled->parts[0].names;
    return absl::OkStatus();
  }
  // A combination: Heapy's rendering, parts joined by " & ", in
  // parentheses inside a combination.
  Labels joined;
  absl::flat_hash_map<std::string, uint32_t> index;
  joined.of.resize(all.count());
  std::string label;
  for (size_t i = 0; i < all.count(); ++i) {
    label = in_and ? "(" : "";
    for (size_t p = 0; p < labelled->parts.size(); ++p) {
      if (p > 0) label += " & ";
      label += (*labelled->parts[p].names)[labelled->parts[p].of[i]];
    }
    if (in_and) label += ")";
    joined.of.Set(i, Labels::Intern(label, index, *joined.names));
  }
  *kinds = std::move(joined.of);
  *names = joined.names;
  return absl::OkStatus();
}

namespace {

// The set of `kinds` partitioned by `c`: one part's labels, or every
// part's joined with " & ".
KindedSet Joined(LiveKinds kinds, const Classifier& c) {
  KindedSet out = std::move(kinds.live);
  out.classifier = c;
  if (kinds.parts.size() == 1) {
    out.labels = std::move(kinds.parts[0]);
    return out;
  }
  out.labels = Labels();
  absl::flat_hash_map<std::string, uint32_t> index;
  out.labels.of.resize(out.count());
  std::string label;
  for (size_t i = 0; i < out.count(); ++i) {
    label.clear();
    for (size_t p = 0; p < kinds.parts.size(); ++p) {
      if (p > 0) label += " & ";
      label += (*kinds.parts[p].names)[kinds.parts[p].of[i]];
    }
    out.labels.of.Set(i, Labels::Intern(label, index, *out.labels.names));
  }
  return out;
}

}  // namespace

absl::StatusOr<KindedSet> HeapView::Classify(const KindedSet& set,
                                             const Classifier& c) {
  if (!c.NeedsLiveObjects()) return set.WithStoredClassifier(c);
  absl::StatusOr<LiveKinds> kinds = ClassifyParts(set, c);
  if (!kinds.ok()) return kinds.status();
  return Joined(std::move(*kinds), c);
}

absl::StatusOr<KindedSet> HeapView::ClassifyWithin(
    const heap::HeapGraph& graph, const heap::ReverseIndex* reverse,
    const KindedSet& set, const Classifier& c) {
  if (!c.NeedsLiveObjects()) return set.WithStoredClassifier(c);
  absl::StatusOr<LiveKinds> kinds = LabelParts(graph, reverse, set, c);
  if (!kinds.ok()) return kinds.status();
  return Joined(std::move(*kinds), c);
}

HeapRecord MakeHeapRecord(KindedSet heap, size_t top_rows, int64_t pause_us,
                          int64_t time_us) {
  HeapRecord r;
  r.time_us = time_us;
  r.pause_us = pause_us;
  heap.classifier = Classifier();  // Clodo
  r.clodo = heap.ToStat(time_us).Limited(top_rows);
  heap.classifier = *Classifier::Parse("Type");
  r.type = heap.ToStat(time_us).Limited(top_rows);
  return r;
}

absl::StatusOr<Stat> HeapView::Summary(const Classifier& c, size_t max_rows,
                                       const ReferencePoint* ref) {
  absl::StatusOr<KindedSet> heap = Heap(ref, /*keep=*/false);
  if (!heap.ok()) return heap.status();
  const int64_t made = absl::ToUnixMicros(absl::Now());
  absl::StatusOr<KindedSet> set = Classify(*heap, c);
  if (!set.ok()) return set.status();
  return set->ToStat(made).Limited(max_rows);
}

}  // namespace annex::glue
