// The session's retention service over one fresh walk per question.
#include "glue/retention_view.h"

#include <algorithm>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/object_text.h"
#include "glue/session.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/node_set.h"
#include "monitor/heap/paths.h"
#include "monitor/heap/reference_pattern.h"
#include "monitor/heap/referrers.h"
#include "monitor/heap/retention.h"
#include "monitor/python/huge_pages.h"

namespace annex::glue {
namespace {

// Node ids of the live members of `addresses` (sorted or not) in `graph`,
// sorted and unique. Pure C++.
heap::NodeSet LiveNodes(const heap::HeapGraph &graph,
                        const std::vector<uintptr_t> &addresses) {
  heap::NodeSet nodes;
  uint32_t cursor = 0;  // usually sorted: then one gallop through
  for (uintptr_t a : addresses) {
    int64_t v = graph.FindAscending(a, &cursor);
    if (v >= 0) nodes.push_back(static_cast<uint32_t>(v));
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

// The members of `set` alive in `graph`: by identity when the set has one
// (LiveNodes: a member that died is left out even when a new object sits
// at its address), else those whose kind now is the one recorded (an
// address reused by an object of another kind is not the member).
// Where: GIL held since the walk that built `graph`.
heap::NodeSet SameObjects(const heap::HeapGraph &graph, const KindedSet &set,
                          HeapView &view) {
  if (set.identity != nullptr) return LiveNodes(graph, set);
  heap::NodeSet out;
  std::vector<uintptr_t> found;
  std::vector<uint64_t> sizes;
  std::vector<size_t> index_in_set;
  heap::NodeSet found_nodes;
  uint32_t cursor = 0;  // set.addresses ascend
  for (size_t i = 0; i < set.count(); ++i) {
    int64_t v = graph.FindAscending(set.addresses[i], &cursor);
    if (v < 0) continue;
    found.push_back(set.addresses[i]);
    sizes.push_back(graph.sizes[v]);
    index_in_set.push_back(i);
    found_nodes.push_back(static_cast<uint32_t>(v));
  }
  KindedSet now = view.Describe(found, &sizes);
  for (size_t k = 0; k < found.size(); ++k) {
    const size_t i = index_in_set[k];
    if ((*now.kind_names)[now.kinds[k]] != (*set.kind_names)[set.kinds[i]]) {
      continue;
    }
    out.push_back(found_nodes[k]);
  }
  return out;  // ascending: set.addresses and node ids share the order
}

// The KindedSet of `nodes` (sorted). Where: as SameObjects.
KindedSet SetOfNodes(const heap::HeapGraph &graph, const heap::NodeSet &nodes,
                     HeapView &view) {
  std::vector<uintptr_t> addresses;
  std::vector<uint64_t> sizes;
  python::ReserveHuge(addresses, nodes.size());
  python::ReserveHuge(sizes, nodes.size());
  for (uint32_t v : nodes) {
    addresses.push_back(graph.addresses[v]);
    sizes.push_back(graph.sizes[v]);
  }
  // Owners looked for in the whole walk: a dict shows as "dict of X" or
  // "dict (no owner)", as hp.heap() shows it.
  return view.Describe(addresses, &sizes, &graph.addresses);
}

// A walk inside one HeapEngine::Question: its graph's objects may be read
// while this lives; on 3.12+ the GIL may change hands when it ends (the swap
// back), so nothing read from the graph's addresses may outlive it.
// Where: annex thread, GIL held, annex current.
// With `live_for`, the graph also holds the live objects that are not
// reachable from the roots (heapu's members and what they hold) when one
// of `live_for`'s members is not reachable: its referrers, referents and
// edges are then its real ones among live objects.
struct Asked {
  // `work`: what the question builds from the graph, for the memory
  // budget's estimate (HeapView::CheckQuestionMemory); a question past it
  // has `graph` ResourceExhausted.
  // `also`: more objects wanted like live_for's members (path sources).
  Asked(HeapView &view, HeapView::Work work,
        const KindedSet *live_for = nullptr,
        const std::vector<uintptr_t> *also = nullptr)
      : wanted(Wanted(live_for, also)),
        question(view.engine()),
        graph(question.status().ok() ? Walk(view, work, live_for != nullptr)
                                     : heap::SharedGraph(question.status())) {}
  heap::SharedGraph Walk(HeapView &view, HeapView::Work work, bool live) const {
    absl::Status s = view.CheckQuestionMemory(nullptr, work);
    if (!s.ok()) return s;
    heap::SharedGraph g = view.engine().Shared(Options(live));
    if (!g.ok()) return g;
    s = view.CheckQuestionMemory(&*g, work);
    if (!s.ok()) return s;  // the graph goes now
    return g;
  }
  static std::vector<uintptr_t> Wanted(const KindedSet *live_for,
                                       const std::vector<uintptr_t> *also) {
    std::vector<uintptr_t> out;
    if (live_for != nullptr) out = live_for->addresses.ToVector();
    if (also != nullptr) out.insert(out.end(), also->begin(), also->end());
    return out;
  }
  heap::GraphOptions Options(bool live) const {
    heap::GraphOptions options;
    if (live) {
      options.scope = heap::GraphOptions::Scope::kLiveIfNeeded;
      options.wanted = &wanted;
    }
    return options;
  }
  // live_for's members, unpacked for the walk while it runs.
  const std::vector<uintptr_t> wanted;
  heap::HeapEngine::Question question;
  heap::SharedGraph graph;
};

// The Clodo kinds of some nodes, described once. Where: as SetOfNodes.
class NodeKinds {
 public:
  NodeKinds() = default;
  // `nodes` sorted or not; duplicates allowed.
  NodeKinds(const heap::HeapGraph &graph, heap::NodeSet nodes, HeapView &view)
      : nodes_(std::move(nodes)) {
    std::sort(nodes_.begin(), nodes_.end());
    nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
    kinds_ = SetOfNodes(graph, nodes_, view);
  }
  // The kind of `v`, one of the nodes given.
  const std::string &Of(uint32_t v) const {
    const size_t i =
        std::lower_bound(nodes_.begin(), nodes_.end(), v) - nodes_.begin();
    return (*kinds_.kind_names)[kinds_.kinds[i]];
  }

 private:
  heap::NodeSet nodes_;
  KindedSet kinds_;
};

PathEdge ToPathEdge(const heap::Edge &e, uintptr_t from, uintptr_t to) {
  return PathEdge{e.kind, e.text, e.name, from, to};
}

}  // namespace

absl::StatusOr<std::unique_ptr<RetentionView>> RetentionView::Create(
    Session &session) {
  auto heap = session.Get<HeapView>();
  if (!heap.ok()) return heap.status();
  return std::unique_ptr<RetentionView>(new RetentionView(*heap));
}

absl::StatusOr<KindedSet> RetentionView::Find(
    const std::vector<uintptr_t> &addresses) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kWalk);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  return SetOfNodes(*graph, LiveNodes(*graph, addresses), *heap_);
}

absl::StatusOr<PathsResult> RetentionView::PathsTo(
    const KindedSet &set, const PathsOptions &options) {
  const std::vector<uintptr_t> *sources =
      options.sources ? &*options.sources : nullptr;
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kPaths, &set, sources);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  PathsResult result;
  heap::NodeSet targets = SameObjects(*graph, set, *heap_);
  result.live_members = targets.size();
  heap::NodeSet starts;
  if (sources != nullptr) {
    starts = LiveNodes(*graph, *sources);
    result.live_sources = starts.size();
    if (starts.empty()) return result;
  } else if (!graph->reachable_only) {
    // heapu members are alive but no path from a root leads to them: they
    // are counted, not searched for.
    const std::vector<uint32_t> distance = heap::RootDistances(*graph);
    heap::NodeSet reachable;
    for (uint32_t v : targets) {
      if (distance[v] != heap::kUnreached) reachable.push_back(v);
    }
    result.unreachable_members = targets.size() - reachable.size();
    targets = std::move(reachable);
  }
  if (targets.empty()) return result;
  heap::ShortestPathOptions sp;
  sp.max_paths = options.max_paths;
  sp.avoid_nodes = LiveNodes(*graph, options.avoid_nodes);
  for (const auto &[from, to] : options.avoid_edges) {
    int64_t a = graph->Find(from), b = graph->Find(to);
    if (a >= 0 && b >= 0) {
      sp.avoid_edges.push_back(
          {static_cast<uint32_t>(a), static_cast<uint32_t>(b)});
    }
  }
  // A reverse index only when the search reached deep into the graph:
  // building one reads every edge, and a target near the roots is found
  // after a small part of them.
  sp.reverse_when_deep = true;
  sp.stop = &heap_->engine().question_stop();
  if (sources != nullptr) sp.sources = &starts;
  if (!options.avoid_levels.empty()) {
    // The edges at those steps of every shortest path under the options
    // so far (counted, not listed), then the search again without them.
    heap::ShortestPathOptions first = sp;
    first.max_paths = 1;
    first.edges_at_levels = options.avoid_levels;
    auto found = heap::FindShortestPaths(*graph, targets, first);
    if (!found.ok()) return found.status();
    for (const heap::EdgeRef &e : found->level_edges) {
      sp.avoid_edges.push_back(e);
      result.avoided_edges.push_back(
          {graph->addresses[e.from], graph->addresses[e.to]});
    }
  }
  // One more than asked for tells whether the list was cut.
  if (sp.max_paths != 0) sp.max_paths += 1;
  auto paths = heap::PathsTo(*graph, targets, sp, &result.num_paths);
  if (!paths.ok()) return paths.status();
  if (options.max_paths != 0 && paths->size() > options.max_paths) {
    paths->resize(options.max_paths);
    result.truncated = true;
  }
  if (!paths->empty()) result.length = paths->front().edges.size();
  // A path from a source starts with the source's kind and address.
  NodeKinds source_kinds;
  if (sources != nullptr) source_kinds = NodeKinds(*graph, starts, *heap_);
  for (heap::RetentionPath &p : *paths) {
    RetentionPath out;
    out.root_name = std::move(p.root_name);
    out.root_edge = std::move(p.root_edge);
    out.text = std::move(p.text);
    if (sources != nullptr) {
      const uint32_t s = starts[p.start];
      out.text = absl::StrFormat("<%s at 0x%x>%s", source_kinds.Of(s),
                                 graph->addresses[s], out.text);
    }
    for (size_t i = 0; i < p.edges.size(); ++i) {
      out.edges.push_back(ToPathEdge(p.edges[i], graph->addresses[p.nodes[i]],
                                     graph->addresses[p.nodes[i + 1]]));
    }
    result.paths.push_back(std::move(out));
  }
  return result;
}

absl::StatusOr<std::vector<RootEntry>> RetentionView::Roots() {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kWalk);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  const NodeKinds kinds(*graph, graph->root_nodes, *heap_);
  std::vector<RootEntry> out;
  out.reserve(graph->root_nodes.size());
  for (size_t r = 0; r < graph->root_nodes.size(); ++r) {
    const uint32_t v = graph->root_nodes[r];
    out.push_back({graph->root_names[r], graph->root_edge(r),
                   graph->root_use(r), graph->root_alias(r),
                   graph->addresses[v], kinds.Of(v)});
  }
  return out;
}

absl::StatusOr<KindedSet> RetentionView::RootObjects(const std::string &name) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kWalk);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes;
  for (size_t r = 0; r < graph->root_nodes.size(); ++r) {
    if (graph->root_names[r] == name) nodes.push_back(graph->root_nodes[r]);
  }
  if (nodes.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no root named '", name, "' now (hp.Root lists them)"));
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return SetOfNodes(*graph, nodes, *heap_);
}

absl::StatusOr<uint64_t> RetentionView::RetainedSize(const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kDominators);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  if (nodes.empty()) return uint64_t{0};
  return heap::RetainedSize(*graph, nodes);
}

absl::StatusOr<KindedSet> RetentionView::Dominated(const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kDominators);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  heap::NodeSet freed = heap::UnreachableWithout(*graph, nodes);
  freed.insert(freed.end(), nodes.begin(), nodes.end());
  std::sort(freed.begin(), freed.end());
  return SetOfNodes(*graph, freed, *heap_);
}

absl::StatusOr<KindedSet> RetentionView::ImmediateDominators(
    const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kDominators);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  heap::NodeSet out;
  if (!nodes.empty()) {
    heap::QuestionStop &stop = heap_->engine().question_stop();
    heap::DominatorTree tree = heap::DominatorTree::Build(*graph, &stop);
    if (stop.stopped()) return stop.status();
    auto member = [&](uint32_t v) {
      return std::binary_search(nodes.begin(), nodes.end(), v);
    };
    for (uint32_t v : nodes) {
      uint32_t u = tree.idom(v);
      // Up the tree past other members: the set's dominator, not a member's.
      while (u < graph->size() && member(u)) u = tree.idom(u);
      if (u < graph->size()) out.push_back(u);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  return SetOfNodes(*graph, out, *heap_);
}

absl::StatusOr<KindedSet> RetentionView::Referrers(const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kReferrers, &set);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  heap::ReverseIndex reverse = heap::ReverseIndex::Build(*graph);
  return SetOfNodes(*graph, heap::Referrers(*graph, reverse, nodes), *heap_);
}

absl::StatusOr<KindedSet> RetentionView::Referents(const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kWalk, &set);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  return SetOfNodes(*graph, heap::Referents(*graph, nodes), *heap_);
}

namespace {

// Names and kinds of `edges`. Where: GIL held since the walk of `graph`.
std::vector<NamedReference> Describe(const heap::HeapGraph &graph,
                                     const std::vector<heap::NamedEdge> &edges,
                                     HeapView &view) {
  heap::NodeSet ends;
  for (const heap::NamedEdge &e : edges) {
    ends.push_back(e.from);
    ends.push_back(e.to);
  }
  const NodeKinds kinds(graph, std::move(ends), view);
  auto kind_of = [&](uint32_t v) { return kinds.Of(v); };
  std::vector<NamedReference> out;
  out.reserve(edges.size());
  for (const heap::NamedEdge &e : edges) {
    NamedReference r;
    r.from = graph.addresses[e.from];
    r.to = graph.addresses[e.to];
    r.from_kind = kind_of(e.from);
    r.to_kind = kind_of(e.to);
    r.edge = ToPathEdge(e.edge, r.from, r.to);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<NamedReference>> RetentionView::EdgesIn(
    const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kReferrers, &set);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  heap::ReverseIndex reverse = heap::ReverseIndex::Build(*graph);
  auto edges = heap::NamedEdgesIn(*graph, reverse, nodes);
  if (!edges.ok()) return edges.status();
  return Describe(*graph, *edges, *heap_);
}

absl::StatusOr<std::vector<NamedReference>> RetentionView::EdgesOut(
    const KindedSet &set) {
  // read `graph` only while `asked` lives
  Asked asked(*heap_, HeapView::Work::kWalk, &set);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  auto edges = heap::NamedEdgesOut(*graph, nodes);
  if (!edges.ok()) return edges.status();
  return Describe(*graph, *edges, *heap_);
}

namespace {

// The objects reachable from `starts` (one forward search). Pure C++.
std::vector<char> ReachableFrom(const heap::HeapGraph &graph,
                                const heap::NodeSet &starts) {
  std::vector<char> seen(graph.size(), 0);
  std::vector<uint32_t> stack(starts.begin(), starts.end());
  for (uint32_t v : starts) seen[v] = 1;
  while (!stack.empty()) {
    const uint32_t v = stack.back();
    stack.pop_back();
    for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
      const uint32_t w = graph.out_targets[e];
      if (!seen[w]) {
        seen[w] = 1;
        stack.push_back(w);
      }
    }
  }
  return seen;
}

// Heapy's default stopkind for one object: a module, a type, a code or
// frame object, or the dict of a module or type. Where: GIL held since the
// walk that found it.
bool DefaultStop(PyObject *obj, const std::string &clodo) {
  return PyModule_Check(obj) || PyType_Check(obj) || PyCode_Check(obj) ||
         PyFrame_Check(obj) || clodo == "dict of module" ||
         clodo == "dict of type";
}

// Whether the target's gc would report node `v` as a referrer of one of
// the nodes `s` (sorted): v is gc-tracked and its tp_traverse visits one
// of them (gc.get_referrers' rule). Calls tp_traverse only (C code that
// makes nothing). Where: GIL held since the walk that built `graph`.
bool GcReports(const heap::HeapGraph &graph, uint32_t v,
               const heap::NodeSet &s) {
  PyObject *obj = reinterpret_cast<PyObject *>(graph.addresses[v]);
  if (!PyObject_IS_GC(obj) || !PyObject_GC_IsTracked(obj)) return false;
  traverseproc traverse = Py_TYPE(obj)->tp_traverse;
  if (traverse == nullptr) return false;
  struct Want {
    const heap::HeapGraph *graph;
    const heap::NodeSet *s;
  } want{&graph, &s};
  auto visit = [](PyObject *o, void *arg) -> int {
    const Want *w = static_cast<Want *>(arg);
    const int64_t u = w->graph->Find(reinterpret_cast<uintptr_t>(o));
    return u >= 0 && std::binary_search(w->s->begin(), w->s->end(),
                                        static_cast<uint32_t>(u))
               ? 1
               : 0;
  };
  return traverse(obj, visit, &want) != 0;
}

}  // namespace

absl::StatusOr<PatternLinks> RetentionView::PatternPathLinks(
    const std::vector<const KindedSet *> &rows) {
  KindedSet all;  // every row's members, for the walk's wanted objects
  for (const KindedSet *r : rows) all = KindedSet::Combine(all, *r, '|');
  Asked asked(*heap_, HeapView::Work::kReferrers, &all);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  std::vector<heap::NodeSet> nodes;
  nodes.reserve(rows.size());
  for (const KindedSet *r : rows) {
    nodes.push_back(SameObjects(*graph, *r, *heap_));
  }
  PatternLinks out;
  std::vector<PyObject *> tos;
  // The rows' nodes already linked from `u`: a member with many references
  // into the row above (a long list) is checked once per edge, not against
  // all of them.
  absl::flat_hash_set<uint32_t> to_nodes;
  std::vector<heap::Edge> named;
  for (size_t k = 0; k + 1 < rows.size(); ++k) {
    out.links.emplace_back();
    const heap::NodeSet &above = nodes[k + 1];
    for (uint32_t u : nodes[k]) {
      tos.clear();
      to_nodes.clear();
      for (uint32_t e = graph->out_begin[u]; e < graph->out_begin[u + 1]; ++e) {
        const uint32_t v = graph->out_targets[e];
        if (std::binary_search(above.begin(), above.end(), v) &&
            to_nodes.insert(v).second) {
          tos.push_back(reinterpret_cast<PyObject *>(graph->addresses[v]));
        }
      }
      if (tos.empty()) continue;
      heap::DescribeEdgesFrom(reinterpret_cast<PyObject *>(graph->addresses[u]),
                              tos, &named);
      for (size_t i = 0; i < tos.size(); ++i) {
        out.links.back().push_back({graph->addresses[u],
                                    reinterpret_cast<uintptr_t>(tos[i]),
                                    named[i].text});
      }
    }
  }
  if (!rows.empty()) {
    const KindedSet &last = *rows.back();
    for (uint32_t v : nodes.back()) {
      const uintptr_t a = graph->addresses[v];
      const size_t i = static_cast<size_t>(
          std::lower_bound(last.addresses.begin(), last.addresses.end(), a) -
          last.addresses.begin());
      const std::string &kind = last.LabelNames()[last.LabelOf(i)];
      const ObjectText text = DescribeObject(reinterpret_cast<PyObject *>(a));
      out.last.emplace_back(
          a, absl::StrCat("<1 ", kind, ": ", BriefItem(a, text), ">"));
    }
  }
  return out;
}

absl::StatusOr<PatternResult> RetentionView::ReferencePattern(
    const KindedSet &set, const PatternOptions &options) {
  if (options.depth < 0) {
    return absl::InvalidArgumentError("depth must be >= 0");
  }
  if (options.max_rows < 1) {
    return absl::InvalidArgumentError("max_rows must be >= 1");
  }
  if (options.imdom && options.sources) {
    return absl::InvalidArgumentError(
        "imdom follows the dominators from the roots: not with src");
  }
  if (options.imdom && options.gc_referrers) {
    return absl::InvalidArgumentError(
        "ref='gc' follows referrers: not with imdom");
  }
  const std::vector<uintptr_t> *sources =
      options.sources ? &*options.sources : nullptr;
  // read `graph` only while `asked` lives
  Asked asked(
      *heap_,
      options.imdom ? HeapView::Work::kDominators : HeapView::Work::kReferrers,
      &set, sources);
  heap::SharedGraph &graph = asked.graph;
  if (!graph.ok()) return graph.status();
  PatternResult result;
  result.header = options.er.Header();
  heap::NodeSet nodes = SameObjects(*graph, set, *heap_);
  result.live_members = nodes.size();
  if (nodes.empty()) return result;
  heap::QuestionStop &stop = heap_->engine().question_stop();
  // Every object of the walk described once (node v is member v): the
  // rows' kinds and sets are read from it.
  const KindedSet all =
      heap_->Describe(graph->addresses, &graph->sizes, &graph->addresses);
  const heap::ReverseIndex reverse = heap::ReverseIndex::Build(*graph);
  // The Clodo kind of node v (its type's name when no owner was looked for).
  const bool has_clodo = all.clodo.size() == all.count();
  auto clodo = [&](uint32_t v) {
    return has_clodo ? all.clodo[v] : all.kinds[v];
  };

  heap::RpOptions rp;
  rp.depth = options.depth;
  rp.max_children = options.max_children;
  rp.max_rows = options.max_rows;
  rp.breadth_first = options.breadth_first;
  rp.nocyc = options.nocyc;
  rp.question_stop = &stop;

  // Kinds under er: read from the description, or classified live.
  std::optional<KindedSet> stored;
  if (!options.er.NeedsLiveObjects()) {
    stored = all.WithStoredClassifier(options.er);
  }
  rp.classify =
      [&](const heap::NodeSet &s) -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> kinds;
    kinds.reserve(s.size());
    if (stored) {
      for (uint32_t v : s)
        kinds.push_back(stored->LabelNames()[stored->LabelOf(v)]);
      return kinds;
    }
    const KindedSet members =
        all.Subset(std::vector<size_t>(s.begin(), s.end()));
    absl::StatusOr<KindedSet> c =
        heap_->ClassifyWithin(*graph, &reverse, members, options.er);
    if (!c.ok()) return c.status();
    if (c->count() != s.size()) {
      return absl::InternalError("a row's object changed during its question");
    }
    for (size_t i = 0; i < c->count(); ++i) {
      kinds.push_back(c->LabelNames()[c->LabelOf(i)]);
    }
    return kinds;
  };

  // The next level: immediate dominators, or referrers (from src: only
  // those reachable from it, and none for a row of src objects).
  std::optional<heap::DominatorTree> tree;
  std::vector<char> in_view;
  heap::NodeSet starts;
  if (options.imdom) {
    tree.emplace(heap::DominatorTree::Build(*graph, &stop));
    if (stop.stopped()) return stop.status();
    rp.relate = [&](const heap::NodeSet &s) {
      heap::NodeSet out;
      for (uint32_t v : s) {
        uint32_t u = tree->idom(v);
        // Up the tree past the row's own objects.
        while (u < graph->size() && std::binary_search(s.begin(), s.end(), u)) {
          u = tree->idom(u);
        }
        if (u < graph->size()) out.push_back(u);
      }
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
      return out;
    };
  } else if (options.gc_referrers && sources == nullptr) {
    rp.relate = [&](const heap::NodeSet &s) {
      heap::NodeSet out;
      for (uint32_t v : heap::Referrers(*graph, reverse, s)) {
        if (GcReports(*graph, v, s)) out.push_back(v);
      }
      return out;
    };
  } else if (sources != nullptr) {
    starts = LiveNodes(*graph, *sources);
    result.live_sources = starts.size();
    in_view = ReachableFrom(*graph, starts);
    rp.relate = [&](const heap::NodeSet &s) {
      heap::NodeSet out;
      if (std::includes(starts.begin(), starts.end(), s.begin(), s.end())) {
        return out;  // a row of sources: where the view starts
      }
      for (uint32_t v : heap::Referrers(*graph, reverse, s)) {
        if (in_view[v] && (!options.gc_referrers || GcReports(*graph, v, s))) {
          out.push_back(v);
        }
      }
      return out;
    };
  }

  // Stop kinds, per object.
  std::vector<char> stop_node;
  if (options.stop_filter) {
    absl::StatusOr<KindedSet> matched = options.stop_filter(all);
    if (!matched.ok()) return matched.status();
    stop_node.assign(graph->size(), 0);
    uint32_t cursor = 0;  // matched->addresses ascend
    for (size_t i = 0; i < matched->count(); ++i) {
      const int64_t v = graph->FindAscending(matched->addresses[i], &cursor);
      if (v >= 0) stop_node[v] = 1;
    }
    rp.stop = [&](const heap::NodeSet &s) {
      return std::all_of(s.begin(), s.end(),
                         [&](uint32_t v) { return stop_node[v] != 0; });
    };
  } else if (!options.stop_kinds.empty()) {
    std::unordered_set<std::string> names(options.stop_kinds.begin(),
                                          options.stop_kinds.end());
    std::vector<char> name_stops(all.kind_names->size());
    for (size_t k = 0; k < name_stops.size(); ++k) {
      name_stops[k] = names.count((*all.kind_names)[k]) > 0;
    }
    rp.stop = [&all, &clodo, name_stops](const heap::NodeSet &s) {
      return std::all_of(s.begin(), s.end(), [&](uint32_t v) {
        return name_stops[all.kinds[v]] || name_stops[clodo(v)];
      });
    };
  } else if (options.stop_default) {
    rp.stop = [&](const heap::NodeSet &s) {
      return std::all_of(s.begin(), s.end(), [&](uint32_t v) {
        return DefaultStop(reinterpret_cast<PyObject *>(graph->addresses[v]),
                           (*all.kind_names)[clodo(v)]);
      });
    };
  }

  absl::StatusOr<heap::RpResult> pattern =
      heap::ReferencePattern(*graph, reverse, nodes, rp);
  if (!pattern.ok()) return pattern.status();
  result.truncated = pattern->truncated;
  result.rows.reserve(pattern->rows.size());
  for (heap::RpRow &r : pattern->rows) {
    PatternRow row;
    row.label = std::move(r.label);
    row.kind = std::move(r.kind);
    row.depth = r.depth;
    row.parent = r.parent;
    row.mark = static_cast<char>(r.mark);
    row.seen = r.seen;
    row.dropped = r.dropped;
    row.set = all.Subset(std::vector<size_t>(r.nodes.begin(), r.nodes.end()));
    result.rows.push_back(std::move(row));
  }
  return result;
}

}  // namespace annex::glue
