// The session's heap service: walks and the sets they give (Heap, HeapU,
// Owners, reference points, FromAddresses, Reach). Its other parts:
// kinded_set.cc (the sets), classify_objects.cc (kinds and sizes of a
// walk's objects), heap_view_classify.cc (live classifiers),
// heap_view_texts.cc (values, byid) and heap_view_records.cc (records,
// Summary).
#include "glue/heap_view.h"

#include <algorithm>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "glue/annex_access.h"
#include "glue/heap_record.h"
#include "glue/heap_view_parts.h"
#include "glue/session.h"
#include "monitor/heap/node_set.h"
#include "monitor/python/huge_pages.h"

namespace annex::glue {

using heap_view_parts::ForEachLiveIndex;

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
  engine->set_lanes((*access)->question_lanes());
  auto view = std::unique_ptr<HeapView>(
      new HeapView(std::move(engine), std::move(*namer),
                   runtime.thread_states(), (*access)->question_pause_limit()));
  view->set_pause_limit(view->default_pause_limit(),
                        "Options::question_pause_limit");
  absl::StatusOr<MemoryBudget*> budget = session.Get<MemoryBudget>();
  if (!budget.ok()) return budget.status();
  view->budget_ = *budget;
  // The engine's buffers kept between questions count in the budget, may
  // use its whole total limit and make room for kept sets (heap/
  // buffer_pool.h). The total, not the pool's own 256 MiB default: a walk
  // of ten million objects with edges records about 1 GB, which the pool
  // must keep for the next question not to fault it in afresh (and for an
  // idle target's follow-up questions to read the kept graph at all).
  // The budget outlives the view (made first), the engine stops reporting
  // when it ends, and the reclaimer holds the pool itself.
  heap::BufferPool& pool = view->engine_->buffers();
  pool.set_limit((*budget)->limits().total_bytes);
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
      // Per member: its unpacked address (8), its node (4) and the kept
      // check's byte (1); the Clodo kinds of every node with the type
      // kinds they are made from (Rcs, 4 + 4); a member index, first
      // referrer kinds or bucket offsets, and labels (4 + 4 + 4); the
      // lanes' per-slice tables are tens of bytes per 32 K members.
      // Per reference: (member, kind) or (member, text) pairs and their
      // buckets (up to ~12), within the bound of the reverse index
      // (4 + 4 per reference) a caller may pass besides.
      bytes += 40 * nodes + 16 * edges;
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
                             const std::vector<uintptr_t>* owner_scan,
                             std::vector<uint8_t>* key_offsets,
                             const std::function<void()>& while_packing) {
  if (sizes != nullptr) {
    return ClassifyObjects(namer_, sorted, *sizes, owner_scan, key_offsets,
                           engine_->lanes(), while_packing);
  }
  absl::StatusOr<std::vector<uint64_t>> s = engine_->SizesOf(sorted);
  if (!s.ok()) s = std::vector<uint64_t>(sorted.size(), 0);
  return ClassifyObjects(namer_, sorted, *s, owner_scan, key_offsets,
                         engine_->lanes(), while_packing);
}

absl::Status HeapView::Keep(KindedSet& set,
                            const std::vector<uintptr_t>* sorted,
                            std::vector<uint8_t> key_offsets) {
  python::FlushDeathWatch();
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> w =
      sorted != nullptr
          ? python::WatchedObjects::Watch(*sorted, std::move(key_offsets))
          : python::WatchedObjects::Watch(set.addresses.ToVector(),
                                          std::move(key_offsets));
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
  python::ReserveHuge(out, sorted.size());
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

absl::StatusOr<KindedSet> HeapView::Heap(
    const ReferencePoint* ref, bool keep, heap::Sizing sizing,
    std::shared_ptr<const heap::HeapGraph>* graph_out) {
  if (graph_out != nullptr && ref != nullptr) {
    return absl::InvalidArgumentError("Heap: a graph only without a reference");
  }
  // A session's first walk reserves its records for what the allocator
  // has in use, at most one object per 16 resident bytes (the smallest
  // object): the count is read outside the question, where it is the
  // annex's int on 3.12+.
  engine_->EstimateFirstWalk([] {
    const int64_t resident = ResidentBytes();
    return resident > 0 ? static_cast<size_t>(resident) / 16 : size_t{0};
  });
  // One question: the objects found are read (and watched) before the GIL
  // can change hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  if (absl::Status s =
          CheckQuestionMemory(nullptr, Work::kDescribe, graph_out != nullptr);
      !s.ok()) {
    return s;
  }
  heap::SharedGraph graph = absl::UnknownError("no walk");
  {
    heap::HeapEngine::ScopedSizing scoped(*engine_, sizing);
    graph =
        engine_->Shared(graph_out != nullptr ? heap::GraphOptions()
                                             : heap::GraphOptions::NodesOnly());
  }
  if (!graph.ok()) return graph.status();
  if (absl::Status s = CheckQuestionMemory(&*graph, Work::kDescribe); !s.ok()) {
    return s;
  }
  KindedSet out;
  std::vector<uintptr_t> fresh;
  // The members' watch key offsets, read with their types (Keep then
  // reads no member again). The watch is set up while a helper packs the
  // set; `watched` takes its identity meanwhile.
  std::vector<uint8_t> key_offsets;
  KindedSet watched;
  absl::Status watch_status;
  std::function<void()> watch;
  if (keep) {
    watch = [&] {
      watch_status = Keep(watched, ref == nullptr ? &graph->addresses : &fresh,
                          std::move(key_offsets));
    };
  }
  if (ref == nullptr) {
    out = Describe(graph->addresses, &graph->sizes, &graph->addresses,
                   keep ? &key_offsets : nullptr, watch);
  } else {
    std::vector<uint64_t> sizes;
    for (size_t v : NotInReference(graph->addresses, ref->reachable)) {
      fresh.push_back(graph->addresses[v]);
      sizes.push_back(graph->sizes[v]);
    }
    out = Describe(fresh, &sizes, &graph->addresses,
                   keep ? &key_offsets : nullptr, watch);
  }
  if (!watch_status.ok()) return watch_status;
  if (keep) {
    out.identity = std::move(watched.identity);
    out.pruned_epoch = watched.pruned_epoch;
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
  if (graph_out != nullptr) *graph_out = graph.shared();
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
  heap::SharedGraph graph = engine_->Shared(heap::GraphOptions::NodesOnly());
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

heap::SharedGraph HeapView::NodesOnlyGraph() {
  if (absl::Status s = CheckQuestionMemory(nullptr, Work::kWalk, false);
      !s.ok()) {
    return s;
  }
  return engine_->Shared(heap::GraphOptions::NodesOnly());
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
  heap::SharedGraph graph = NodesOnlyGraph();
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
  uint32_t cursor = 0;  // set.addresses ascend
  ForEachLiveIndex(set.count(), dead, [&](size_t i) {
    int64_t v = graph.FindAscending(set.addresses[i], &cursor);
    if (v >= 0) nodes.push_back(static_cast<uint32_t>(v));
  });
  return nodes;
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

}  // namespace annex::glue
