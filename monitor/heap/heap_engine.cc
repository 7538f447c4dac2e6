// The heap engine's queries: each is one stop-the-world walk with the target
// current.
#include "monitor/heap/heap_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "monitor/heap/internal/walker.h"
#include "monitor/heap/roots.h"
#include "monitor/python/huge_pages.h"
#include "monitor/python/version.h"

namespace annex::heap {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct UnreachableClosure {
  const internal::AddressBitmap* reachable;
  std::vector<uintptr_t>* out;
};

// VisitGcTracked callback. Where: GIL held, target current; allocates no
// Python object.
bool CollectIfUnreachable(PyObject* obj, void* arg) {
  auto* c = static_cast<UnreachableClosure*>(arg);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(obj);
  if (!c->reachable->Test(addr)) c->out->push_back(addr);
  return true;
}

}  // namespace

HeapEngine::HeapEngine(const python::ThreadStates& ts,
                       std::vector<PyThreadState*> excluded)
    : ts_(ts), excluded_(excluded.begin(), excluded.end()) {
  if (ts_.annex_ts != nullptr && ts_.target_ts != nullptr) {
    excluded_.insert(ts_.target_ts);
  }
}

HeapEngine::~HeapEngine() {
  DropKeptGraph();
  buffers_->Trim();
  buffers_->set_on_change(nullptr);
}

size_t HeapEngine::FirstWalkRoom(size_t n) {
  constexpr size_t kElement = sizeof(uint64_t);  // every record's element
  // The most elements whose room (ReserveHuge: whole huge pages, minus
  // malloc's header) is one mapping under glibc's largest threshold.
  constexpr size_t kWithinThreshold =
      (BufferPool::kDefaultMinBytes - python::kHugePageBytes -
       python::kMallocSlack) /
      kElement;
  if (n > (SIZE_MAX >> 1) + 1) return n;  // no power of two holds it
  const size_t room = n == 0 ? 0 : absl::bit_ceil(n);
  return n <= kWithinThreshold ? std::min(room, kWithinThreshold) : room;
}

absl::Status HeapEngine::CheckCurrent() const {
  if (!Py_IsInitialized() || python::IsFinalizing()) {
    return absl::FailedPreconditionError("Python is not running");
  }
  PyThreadState* current = python::CurrentThreadStateUnchecked();
  // The annex's thread state changes when a fork() of the target made the
  // runtime create the annex interpreter again: any thread state of an
  // interpreter other than the target's stands for the annex.
  const bool annex_current = ts_.annex_ts != nullptr && current != nullptr &&
                             PyThreadState_GetInterpreter(current) !=
                                 PyThreadState_GetInterpreter(ts_.target_ts);
  if (current == nullptr || ts_.target_ts == nullptr ||
      (current != ts_.target_ts && !annex_current)) {
    return absl::FailedPreconditionError(
        "the heap engine needs the GIL with its thread states current");
  }
  return absl::OkStatus();
}

HeapEngine::Question::Question(const HeapEngine& engine)
    : engine_(engine), status_(engine.CheckCurrent()) {
  if (!status_.ok()) return;
  // The question's only swap: on 3.12+ the GIL may change hands here, never
  // inside the question. Questions only read (python::TargetMark).
  swap_.emplace(engine.ts_, python::ScopedTargetSwap::Use::kRead);
  counted_ = true;
  if (engine.question_depth_++ == 0) {
    status_ = WaitForGcIdle();
    // The pause counts from here: the target is held from now on.
    if (status_.ok()) engine.stop_.Begin(engine.limits_);
  }
  if (status_.ok()) preserve_.emplace();
}

// Members end in reverse order: the error is restored, then the swap back.
HeapEngine::Question::~Question() {
  preserve_.reset();
  if (counted_ && --engine_.question_depth_ == 0) engine_.stop_.End();
}

absl::Status HeapEngine::Question::WaitForGcIdle() {
  if (!python::GcCollecting()) return absl::OkStatus();
  // Nothing was read yet, so the GIL may change hands: release it with the
  // target current (re-taken with target_ts, the fast way of docs/design.md
  // rule 2) until the collecting thread has finished.
  const absl::Time deadline = absl::Now() + kGcWait;
  while (python::GcCollecting()) {
    if (absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("a gc collection in the target has run for over ",
                       absl::FormatDuration(kGcWait),
                       " (a finalizer may be blocked); ask again later"));
    }
    python::ScopedGilRelease release;
    absl::SleepFor(absl::Microseconds(200));
  }
  return absl::OkStatus();
}

absl::StatusOr<HeapResult> HeapEngine::Walk(HeapGraph* graph,
                                            const GraphOptions* options) {
  const int64_t start = NowNs();
  Question question(*this);
  if (!question.status().ok()) return question.status();
  HeapResult result;
  {
    absl::StatusOr<RootList> roots = CollectRoots(excluded_);
    if (!roots.ok()) return roots.status();
    using Record = internal::Walker::Record;
    internal::Walker walker(
        &extensions_, graph == nullptr                        ? Record::kNothing
                      : options != nullptr && !options->edges ? Record::kSizes
                                                              : Record::kEdges);
    walker.set_sizing(sizing_);
    walker.set_lanes(lanes_);
    walker.set_question_stop(&stop_);
    if (graph != nullptr) walker.set_pool(buffers_);
    // Room for what the last walk recorded and an eighth more; a first
    // walk's for its estimate (FirstWalkRoom), and a first walk with edges
    // for two references an object. The edges' room is taken from the
    // estimate, not the objects' room, which may already be a power of
    // two that doubled would exceed FirstWalkRoom's limit.
    const size_t estimate =
        last_recorded_objects_ != 0
            ? last_recorded_objects_ + last_recorded_objects_ / 8
            : first_walk_objects_;
    walker.Reserve(
        last_recorded_objects_ != 0 ? estimate : FirstWalkRoom(estimate),
        last_recorded_edges_ != 0
            ? last_recorded_edges_ + last_recorded_edges_ / 8
            : FirstWalkRoom(2 * estimate));
    for (uintptr_t a : hidden_) walker.MarkVisited(a);
    for (size_t i = 0; i < roots->size(); ++i) walker.AddRoot(roots->object(i));
    walker.Run();
    if (stop_.stopped()) return stop_.status();
    bool live = false;
    if (graph != nullptr && options != nullptr) {
      live = options->scope == GraphOptions::Scope::kLive;
      if (options->scope == GraphOptions::Scope::kLiveIfNeeded &&
          options->wanted != nullptr) {
        for (uintptr_t a : *options->wanted) {
          if (!walker.visited().Test(a)) {
            live = true;
            break;
          }
        }
      }
    }
    std::vector<uintptr_t> hidden_only;
    if (live) {
      // heapu()'s members become further starting points (no named roots):
      // the walk goes on from them, so what they hold is in the graph too.
      std::vector<uintptr_t> candidates;
      absl::Status s = UnreachableCandidates(walker, &candidates, &hidden_only);
      if (!s.ok()) return s;
      for (uintptr_t a : hidden_only) walker.MarkVisited(a);
      for (uintptr_t a : candidates) {
        walker.AddRoot(reinterpret_cast<PyObject*>(a));
      }
      walker.Run();
      if (stop_.stopped()) return stop_.status();
    }
    for (uintptr_t a : hidden_) walker.Unmark(a);
    for (uintptr_t a : hidden_only) walker.Unmark(a);
    result.walk_ns = NowNs() - start;
    result.total_bytes = walker.total_bytes();
    result.inline_values_bytes = walker.inline_values_bytes();
    result.record_growths = walker.record_growths();
    result.visited_set_bytes = walker.visited().MemoryBytes();
    if (graph != nullptr) {
      last_recorded_objects_ = walker.count();
      if (walker.edge_count() > 0) last_recorded_edges_ = walker.edge_count();
      walker.FillGraph(graph);
      graph->reachable_only = !live;
      graph->root_names.clear();
      graph->root_nodes.clear();
      graph->root_edges.clear();
      graph->root_uses.clear();
      graph->root_aliases.clear();
      for (size_t i = 0; i < roots->size(); ++i) {
        graph->root_names.push_back(roots->name(i));
        graph->root_edges.push_back(roots->edge(i));
        graph->root_uses.push_back(roots->use(i));
        graph->root_aliases.push_back(roots->alias(i));
        graph->root_nodes.push_back(static_cast<uint32_t>(
            graph->Find(reinterpret_cast<uintptr_t>(roots->object(i)))));
      }
      graph->preferred_in.clear();
      for (const auto& [from, to] : roots->preferred_steps()) {
        const int64_t f = graph->Find(from), t = graph->Find(to);
        if (f >= 0 && t >= 0) {
          graph->preferred_in.emplace_back(static_cast<uint32_t>(t),
                                           static_cast<uint32_t>(f));
        }
      }
      std::sort(graph->preferred_in.begin(), graph->preferred_in.end());
      graph->preferred_in.erase(
          std::unique(
              graph->preferred_in.begin(), graph->preferred_in.end(),
              [](const auto& a, const auto& b) { return a.first == b.first; }),
          graph->preferred_in.end());
    } else {
      ObjectSet::Builder builder;
      walker.visited().ForEach([&](uintptr_t a) { builder.Add(a); });
      result.objects = std::move(builder).Build();
    }
  }  // root references released with the target current (rule 10)
  result.pause_ns = NowNs() - start;
  return result;
}

void HeapEngine::EstimateFirstWalk(absl::FunctionRef<size_t()> max_objects) {
  if (last_recorded_objects_ != 0 || first_walk_objects_ != 0) return;
  int64_t blocks;
  {
    python::ScopedErrorPreserver keep;  // the caller's pending error
    blocks = python::AllocatedBlocks();
  }
  if (blocks > 0) {
    first_walk_objects_ = std::min(static_cast<size_t>(blocks), max_objects());
  }
}

absl::StatusOr<HeapResult> HeapEngine::Heap() { return Walk(nullptr); }

absl::StatusOr<HeldObjectSet> HeapEngine::HeapHeld(HeapResult* stats) {
  // One question: the references are taken before any swap could let the
  // target run (and free what the walk found).
  Question question(*this);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<HeapResult> r = Walk(nullptr);
  if (!r.ok()) return r.status();
  HeldObjectSet held = HeldObjectSet::Take(std::move(r->objects));
  if (stats != nullptr) {
    *stats = std::move(*r);
    stats->objects = ObjectSet();
  }
  return held;
}

absl::Status HeapEngine::Release(HeldObjectSet& held) {
  Question question(*this);
  if (!question.status().ok()) return question.status();
  // Dropping references can run destructors: the target changes.
  if (ts_.target_runs != nullptr) ts_.target_runs->fetch_add(1);
  held.ReleaseNow();
  return absl::OkStatus();
}

absl::StatusOr<HeapGraph> HeapEngine::Graph(HeapResult* stats) {
  return Graph(GraphOptions(), stats);
}

absl::StatusOr<HeapGraph> HeapEngine::Graph(const GraphOptions& options,
                                            HeapResult* stats) {
  HeapGraph graph;
  absl::StatusOr<HeapResult> r = Walk(&graph, &options);
  if (!r.ok()) return r.status();
  if (stats != nullptr) {
    *stats = std::move(*r);
    stats->objects = ObjectSet();
  }
  return graph;
}

namespace {

// The bytes of a graph's big arrays.
size_t GraphBytes(const HeapGraph& g) {
  return g.addresses.capacity() * sizeof(uintptr_t) +
         g.sizes.capacity() * sizeof(uint64_t) +
         g.out_begin.capacity() * sizeof(uint32_t) +
         g.out_targets.capacity() * sizeof(uint32_t);
}

// Whether `kept` (made with edges or not) holds what `options` asks for.
bool Serves(const HeapGraph& kept, bool kept_edges,
            const GraphOptions& options) {
  if (options.edges && !kept_edges) return false;
  switch (options.scope) {
    case GraphOptions::Scope::kReachable:
      return kept.reachable_only;
    case GraphOptions::Scope::kLive:
      return !kept.reachable_only;
    case GraphOptions::Scope::kLiveIfNeeded:
      break;
  }
  if (!kept.reachable_only || options.wanted == nullptr) return true;
  // Wanted addresses usually ascend (a set's members): one gallop.
  uint32_t cursor = 0;
  return std::all_of(
      options.wanted->begin(), options.wanted->end(),
      [&](uintptr_t a) { return kept.FindAscending(a, &cursor) >= 0; });
}

}  // namespace

SharedGraph HeapEngine::Shared(const GraphOptions& options, HeapResult* stats) {
  const int64_t start = NowNs();
  Question question(*this);
  if (!question.status().ok()) return question.status();
  const std::optional<python::TargetMark> mark = python::MarkTarget(ts_);
  std::shared_ptr<const HeapGraph> kept;
  HeapResult kept_stats;
  {
    absl::MutexLock lock(&kept_->mu);
    if (kept_->graph != nullptr && mark.has_value() &&
        python::TargetUnchanged(kept_->mark, *mark) &&
        kept_->sizing == sizing_ &&
        kept_->extensions == extensions_.generation() &&
        Serves(*kept_->graph, kept_->edges, options)) {
      kept = kept_->graph;
      kept_stats.total_bytes = kept_->total_bytes;
      kept_stats.inline_values_bytes = kept_->inline_values_bytes;
    }
  }
  if (kept != nullptr) {
    ++shared_stats_.reused;
    if (stats != nullptr) {
      *stats = std::move(kept_stats);
      stats->pause_ns = NowNs() - start;
    }
    return kept;
  }
  // Its arrays serve the new walk (when no caller holds it still).
  DropKeptGraph();
  auto graph = std::make_shared<HeapGraph>();
  absl::StatusOr<HeapResult> r = Walk(graph.get(), &options);
  if (!r.ok()) return r.status();
  ++shared_stats_.walks;
  const size_t bytes = GraphBytes(*graph);
  // Taken again after the walk: equal unless the walk changed the target.
  const std::optional<python::TargetMark> after = python::MarkTarget(ts_);
  if (mark.has_value() && after.has_value() &&
      python::TargetUnchanged(*mark, *after) && bytes <= buffers_->limit()) {
    {
      absl::MutexLock lock(&kept_->mu);
      kept_->graph = graph;
      kept_->mark = *after;
      kept_->sizing = sizing_;
      kept_->extensions = extensions_.generation();
      kept_->edges = options.edges;
      kept_->total_bytes = r->total_bytes;
      kept_->inline_values_bytes = r->inline_values_bytes;
    }
    // Trim() (the memory budget's reclaimer) lets it go; the graph gives
    // its arrays back to the pool as it ends, outside the kept lock.
    buffers_->SetHeld(bytes, [k = kept_] {
      std::shared_ptr<const HeapGraph> ending;
      absl::MutexLock lock(&k->mu);
      ending = std::move(k->graph);
    });
  }
  if (stats != nullptr) {
    *stats = std::move(*r);
    stats->objects = ObjectSet();
  }
  return std::shared_ptr<const HeapGraph>(std::move(graph));
}

void HeapEngine::DropKeptGraph() {
  std::shared_ptr<const HeapGraph> ending;  // ends after the lock
  {
    absl::MutexLock lock(&kept_->mu);
    ending = std::move(kept_->graph);
  }
  if (ending != nullptr) buffers_->SetHeld(0, nullptr);
}

absl::Status HeapEngine::UnreachableCandidates(
    internal::Walker& walker, std::vector<uintptr_t>* candidates,
    std::vector<uintptr_t>* hidden_only) {
  // Hidden objects are marked visited in `walker`: unmarked for the look
  // at the gc lists, marked again at the end.
  for (uintptr_t a : hidden_) walker.Unmark(a);
  std::vector<uintptr_t> unreachable;
  UnreachableClosure closure{&walker.visited(), &unreachable};
  absl::Status s = python::VisitGcTracked(&CollectIfUnreachable, &closure);
  if (!s.ok()) return s;
  std::sort(unreachable.begin(), unreachable.end());
  unreachable.erase(std::unique(unreachable.begin(), unreachable.end()),
                    unreachable.end());
  candidates->clear();
  if (hidden_.empty()) {
    *candidates = std::move(unreachable);
    return absl::OkStatus();
  }
  // Hidden objects found in the gc lists are alive (rule 10): walk what
  // they reach, short of the reachable set, and leave all of it out.
  internal::Walker hidden_walk(&extensions_,
                               internal::Walker::Record::kNothing);
  hidden_walk.set_stop(&walker.visited());
  for (uintptr_t a : unreachable) {
    if (hidden_.contains(a)) {
      hidden_walk.AddRoot(reinterpret_cast<PyObject*>(a));
    }
  }
  hidden_walk.Run();
  for (uintptr_t a : unreachable) {
    if (!hidden_walk.visited().Test(a)) candidates->push_back(a);
  }
  if (hidden_only != nullptr) {
    hidden_walk.visited().ForEach([&](uintptr_t a) {
      if (!hidden_.contains(a)) hidden_only->push_back(a);
    });
  }
  for (uintptr_t a : hidden_) walker.MarkVisited(a);
  return absl::OkStatus();
}

absl::StatusOr<ObjectSet> HeapEngine::Unreachable() {
  Question question(*this);
  if (!question.status().ok()) return question.status();
  std::vector<uintptr_t> candidates;
  {
    absl::StatusOr<RootList> roots = CollectRoots(excluded_);
    if (!roots.ok()) return roots.status();
    internal::Walker walker(&extensions_, internal::Walker::Record::kNothing);
    for (uintptr_t a : hidden_) walker.MarkVisited(a);
    for (size_t i = 0; i < roots->size(); ++i) walker.AddRoot(roots->object(i));
    walker.Run();
    absl::Status s = UnreachableCandidates(walker, &candidates, nullptr);
    if (!s.ok()) return s;
    for (uintptr_t a : hidden_) walker.Unmark(a);
  }  // root references released with the target current (rule 10)
  return ObjectSet::FromUnsorted(std::move(candidates));
}

namespace {

// The members of heapu() (sorted `u`) as CPython's collector would judge
// them in a full collection. Where: GIL held since `u` was found, target
// current; calls tp_traverse only (C code of the types, no Python code).
struct GcJudge {
  const std::vector<uintptr_t>* u;
  std::vector<Py_ssize_t> internal_refs;  // references from other members
  std::vector<uint8_t> held;
  std::vector<uint32_t> stack;

  int64_t IndexOf(PyObject* obj) const {
    const uintptr_t a = reinterpret_cast<uintptr_t>(obj);
    auto it = std::lower_bound(u->begin(), u->end(), a);
    if (it == u->end() || *it != a) return -1;
    return it - u->begin();
  }
  static int Count(PyObject* obj, void* arg) {
    auto* j = static_cast<GcJudge*>(arg);
    if (obj == nullptr) return 0;
    const int64_t i = j->IndexOf(obj);
    if (i >= 0) ++j->internal_refs[i];
    return 0;
  }
  static int Mark(PyObject* obj, void* arg) {
    auto* j = static_cast<GcJudge*>(arg);
    if (obj == nullptr) return 0;
    const int64_t i = j->IndexOf(obj);
    if (i >= 0 && !j->held[i]) {
      j->held[i] = 1;
      j->stack.push_back(static_cast<uint32_t>(i));
    }
    return 0;
  }
  // What the collector traverses: tp_traverse of gc objects (all members
  // come from the gc lists, so their types have one).
  static void Traverse(PyObject* obj, visitproc visit, void* arg) {
    traverseproc t = Py_TYPE(obj)->tp_traverse;
    if (t != nullptr) t(obj, visit, arg);
  }

  void Run() {
    const size_t n = u->size();
    internal_refs.assign(n, 0);
    held.assign(n, 0);
    for (uintptr_t a : *u)
      Traverse(reinterpret_cast<PyObject*>(a), &Count, this);
    // A reference the members' tp_traverse does not explain comes from
    // outside (C code, a value stack, a non-gc object): the collector keeps
    // the object and everything it reaches.
    for (size_t i = 0; i < n; ++i) {
      if (Py_REFCNT(reinterpret_cast<PyObject*>((*u)[i])) > internal_refs[i] &&
          !held[i]) {
        held[i] = 1;
        stack.push_back(static_cast<uint32_t>(i));
      }
    }
    while (!stack.empty()) {
      const uint32_t i = stack.back();
      stack.pop_back();
      Traverse(reinterpret_cast<PyObject*>((*u)[i]), &Mark, this);
    }
  }
};

}  // namespace

absl::StatusOr<UnreachableParts> HeapEngine::UnreachableSplit() {
  Question question(*this);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<ObjectSet> u = Unreachable();
  if (!u.ok()) return u.status();
  std::vector<uintptr_t> members = u->ToVector();
  GcJudge judge;
  judge.u = &members;
  judge.Run();
  ObjectSet::Builder garbage, held;
  for (size_t i = 0; i < members.size(); ++i) {
    (judge.held[i] ? held : garbage).Add(members[i]);
  }
  UnreachableParts parts;
  parts.garbage = std::move(garbage).Build();
  parts.held = std::move(held).Build();
  return parts;
}

absl::StatusOr<std::shared_ptr<python::WatchedObjects>> HeapEngine::HeapKept() {
  // One question: the objects are watched before the GIL can change hands.
  Question question(*this);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<HeapResult> r = Heap();
  if (!r.ok()) return r.status();
  return python::WatchedObjects::Watch(r->objects.ToVector());
}

ObjectSet HeapEngine::LiveMembers(const python::WatchedObjects& kept) {
  ObjectSet::Builder builder;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept.Same(i)) builder.Add(kept.addresses()[i]);
  }
  return std::move(builder).Build();
}

absl::Status HeapEngine::SetRef() {
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> kept = HeapKept();
  if (!kept.ok()) return kept.status();
  ref_ = std::move(*kept);
  return absl::OkStatus();
}

absl::StatusOr<ObjectSet> HeapEngine::SinceRef() {
  // One question: the reference is read in the GIL hold of the walk.
  Question question(*this);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<HeapResult> r = Heap();
  if (!r.ok()) return r.status();
  if (ref_ == nullptr) return std::move(r->objects);
  return r->objects - LiveMembers(*ref_);
}

absl::StatusOr<uint64_t> HeapEngine::SizeOf(PyObject* obj) {
  if (obj == nullptr) return absl::InvalidArgumentError("null object");
  absl::StatusOr<std::vector<uint64_t>> sizes =
      SizesOf({reinterpret_cast<uintptr_t>(obj)});
  if (!sizes.ok()) return sizes.status();
  return sizes->front();
}

absl::StatusOr<std::vector<uint64_t>> HeapEngine::SizesOf(
    const std::vector<uintptr_t>& objects) {
  Question question(*this);
  if (!question.status().ok()) return question.status();
  // One cache for all: the objects of a set come in runs of few types.
  internal::TypeInfoCache types(&extensions_);
  std::vector<uint64_t> out;
  python::ReserveHuge(out, objects.size());
  uint64_t values;
  for (uintptr_t a : objects) {
    PyObject* obj = reinterpret_cast<PyObject*>(a);
    out.push_back(types.Size(obj, types.Get(Py_TYPE(obj)), sizing_, &values));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, uintptr_t>>>
HeapEngine::RootNames() {
  Question question(*this);
  if (!question.status().ok()) return question.status();
  absl::StatusOr<RootList> roots = CollectRoots(excluded_);
  if (!roots.ok()) return roots.status();
  std::vector<std::pair<std::string, uintptr_t>> out;
  for (size_t i = 0; i < roots->size(); ++i) {
    out.emplace_back(roots->name(i) + roots->edge(i),
                     reinterpret_cast<uintptr_t>(roots->object(i)));
  }
  return out;
}

}  // namespace annex::heap
