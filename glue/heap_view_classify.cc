// The classifiers that need live objects (Rcs, Via, Prod, refdby, ...):
// HeapView::Classify walks again and labels the members inside the walk's
// question.
#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glue/heap_view.h"
#include "glue/heap_view_parts.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/referrers.h"
#include "monitor/python/guards.h"
#include "monitor/python/huge_pages.h"
#include "monitor/python/version.h"

namespace annex::glue {

using heap_view_parts::ForEachLiveIndex;

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
    Normalize(ids);
    if (ids.empty()) return empty_;
    if (ids.size() == 1) return one_[ids[0]];
    // Pairs (held two ways, as an int by an instance and a tuple) are
    // common enough that a vector key, hashed element by element and
    // copied when new, was most of byrcs' labelling: one 64-bit key.
    // Members in address order come in runs of one type, often held the
    // same two ways (a run of ints): the last pair's slot is kept (valid
    // until the next insertion, which replaces it).
    if (ids.size() == 2) return OfTwo(ids[0], ids[1]);
    return many_.try_emplace(ids, kNoLabel).first->second;
  }
  // The slot of the set of the `n` indexes at `ids` (any order, repeats
  // allowed): Slot's, without copying a set of one or two (most members
  // are held one or two ways). `scratch` holds a larger set's copy.
  uint32_t& Of(const uint32_t* ids, size_t n, std::vector<uint32_t>& scratch) {
    if (n == 1) return OfOne(ids[0]);
    if (n == 2) return OfTwo(ids[0], ids[1]);
    scratch.assign(ids, ids + n);
    return Slot(scratch);
  }
  // The slot of the set of the one index `id` (Slot of {id}).
  uint32_t& OfOne(uint32_t id) { return one_[id]; }
  // The slot of the set {a, b} (Slot of {a, b}, in either order).
  uint32_t& OfTwo(uint32_t a, uint32_t b) {
    if (a > b) std::swap(a, b);
    if (a == b) return one_[a];
    const uint64_t key = uint64_t{a} << 32 | b;
    if (last_two_ == nullptr || key != last_two_key_) {
      last_two_ = &two_.try_emplace(key, kNoLabel).first->second;
      last_two_key_ = key;
    }
    return *last_two_;
  }
  // Sorts `ids` and drops repeats, as Slot does.
  static void Normalize(std::vector<uint32_t>& ids) {
    // Most members are held one or two ways: no sort call for those.
    if (ids.size() < 2) return;
    if (ids.size() == 2) {
      if (ids[0] > ids[1]) std::swap(ids[0], ids[1]);
      if (ids[0] == ids[1]) ids.pop_back();
      return;
    }
    // A member held by many referrers the same way (a str in each of
    // 250 000 tuples, as "[1]") comes as a run of one index: runs are
    // dropped in one pass before the sort, which took O(n log n) on them.
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.size() < 2) return;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }

 private:
  uint32_t empty_ = kNoLabel;
  std::vector<uint32_t> one_;
  absl::flat_hash_map<uint64_t, uint32_t> two_;
  uint64_t last_two_key_ = 0;
  uint32_t* last_two_ = nullptr;
  absl::flat_hash_map<std::vector<uint32_t>, uint32_t> many_;
};

// A member that is no node of the graph (NodesOf).
constexpr uint32_t kNoNode = UINT32_MAX;

// The node of each member of `set` in `graph` (kNoNode: not in it; node
// ids are 32-bit, as the graph's edges hold them). Both are sorted by
// address: one merge when the set is a fair part of the graph, else a
// binary search per member. `unpacked`: the set's addresses, when the
// caller has them unpacked (else unpacked here). Pure C++, any thread.
std::vector<uint32_t> NodesOf(const heap::HeapGraph& graph,
                              const KindedSet& set,
                              const std::vector<uintptr_t>* unpacked) {
  std::vector<uint32_t> node_of;
  python::AssignHuge(node_of, set.count(), kNoNode);
  const size_t n = graph.size();
  if (set.count() * 32 < n) {
    uint32_t cursor = 0;  // set.addresses ascend
    for (size_t i = 0; i < set.count(); ++i) {
      const int64_t v = graph.FindAscending(set.addresses[i], &cursor);
      if (v >= 0) node_of[i] = static_cast<uint32_t>(v);
    }
    return node_of;
  }
  std::vector<uintptr_t> own;
  if (unpacked == nullptr) own = set.addresses.ToVector();
  const std::vector<uintptr_t>& addresses = unpacked ? *unpacked : own;
  size_t j = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    while (j < n && graph.addresses[j] < addresses[i]) ++j;
    if (j == n) break;
    if (graph.addresses[j] == addresses[i])
      node_of[i] = static_cast<uint32_t>(j);
  }
  return node_of;
}

// How far ahead of a scan in address order member headers are fetched
// (as in ClassifyObjects).
constexpr size_t kPrefetchAhead = 16;

using MemberPairs = std::vector<std::pair<uint32_t, uint32_t>>;

// Buckets the (member, value) pairs of `parts` by member, each bucket in
// the pairs' order (parts in turn; a counting sort): member k's values are
// values[begin[k] .. begin[k + 1]), for members 0..n-1. `begin` serves as
// the buckets' fill cursors and is shifted back in place, so no second
// array of n is made (at ten million members a copy of it faulted in 40 MB
// of fresh 4 KiB pages); both arrays are reserved in huge pages. Pure C++.
void BucketByMember(size_t n, const std::vector<const MemberPairs*>& parts,
                    std::vector<uint32_t>& begin,
                    std::vector<uint32_t>& values) {
  python::AssignHuge(begin, n + 1, uint32_t{0});
  size_t count = 0;
  for (const MemberPairs* pairs : parts) {
    for (const auto& p : *pairs) ++begin[p.first + 1];
    count += pairs->size();
  }
  for (size_t k = 0; k < n; ++k) begin[k + 1] += begin[k];
  python::AssignHuge(values, count, uint32_t{0});
  // Filling moves each begin[k] to the end of bucket k, which is where
  // bucket k + 1 begins.
  for (const MemberPairs* pairs : parts) {
    for (const auto& p : *pairs) values[begin[p.first]++] = p.second;
  }
  std::memmove(begin.data() + 1, begin.data(), n * sizeof(uint32_t));
  begin[0] = 0;
}

// Makes room for `n` elements in `v` (cleared and refilled per referrer)
// before it grows past its capacity: the first large referrer (a list of
// millions of members) reserves it in huge pages rather than doubling it
// through fresh 4 KiB pages. Pure C++.
template <typename T>
void RoomFor(std::vector<T>& v, size_t n) {
  if (v.capacity() < n) {
    v.clear();
    python::ReserveHuge(v, n);
  }
}

// A node that is no kept member (MembersOfNodes).
constexpr uint32_t kNoMember = UINT32_MAX;

// The kept member each of the graph's `nodes` is (kNoMember: none), for
// reading members' referrers from the forward edges; `keep_node[k]` is
// member k's node, ascending. Empty when every node is a member (member k
// is then node k: a set of the whole heap, as hp.heap() is), where the
// table would be 4 bytes a node of fresh memory for nothing. Pure C++.
std::vector<uint32_t> MembersOfNodes(size_t nodes,
                                     const std::vector<uint32_t>& keep_node) {
  std::vector<uint32_t> member_of;
  if (keep_node.size() == nodes) return member_of;
  python::AssignHuge(member_of, nodes, kNoMember);
  for (size_t k = 0; k < keep_node.size(); ++k) {
    member_of[keep_node[k]] = static_cast<uint32_t>(k);
  }
  return member_of;
}

// A referrer of more edges than this is named on the caller (Via): on the
// lanes, a referrer's repeated targets are found by comparing each with
// those before it.
constexpr uint32_t kLaneEdges = 16;

// What the lanes name of one slice of referrer nodes (NamePlainEdges).
struct LaneNames {
  // (member, text id), or (member, kKeyCode | i) for the attribute under
  // keys[i] until the caller gives that its id.
  MemberPairs held;
  std::vector<PyObject*> keys;
  // The referrers whose edges to members are left to the caller, in node
  // order: more than kLaneEdges edges, or an edge that is no PlainEdge.
  std::vector<uint32_t> deferred;
};
constexpr uint32_t kKeyCode = uint32_t{1} << 31;

// Names the edges from every node of `graph` to the `members` members
// (`member_of`, as MembersOfNodes gives it) that ForEachPlainEdgeFrom can
// name, on the lanes, one LaneNames per slice of nodes, with the ids of
// `texts`; the texts of items 0..kLaneEdges-1, the class and the instance
// dict are interned first, and attribute keys on the caller afterwards.
// False when `stop` ended the question. Where: the question's thread, GIL
// held, the target's thread state swapped in; the lanes run no Python
// code.
bool NamePlainEdges(const heap::HeapGraph& graph, size_t members,
                    const std::vector<uint32_t>& member_of,
                    const heap::Lanes& lanes, heap::QuestionStop& stop,
                    heap::EdgeTexts& texts, std::vector<LaneNames>& slices) {
  std::array<uint32_t, kLaneEdges> item_id;
  for (size_t k = 0; k < kLaneEdges; ++k) item_id[k] = texts.OfItem(k);
  const uint32_t class_id = texts.OfClass();
  const uint32_t dict_id = texts.OfInstanceDict();
  const size_t nodes = graph.size(), grain = lanes.grain();
  slices.clear();
  slices.resize((nodes + grain - 1) / grain);
  const bool named = lanes.For(
      nodes,
      [&](size_t from, size_t to) {
        LaneNames& slice = slices[from / grain];
        // A pair per edge into a member at most: reserved, not grown by
        // doubling (which copied, and faulted in fresh pages twice the
        // size: 20 K faults a question at ten million objects). A set of
        // a few members is expected to spread over the slices (the
        // reservation only saves growing; a slice may grow past it).
        slice.held.reserve(
            std::min<size_t>(graph.out_begin[to] - graph.out_begin[from],
                             size_t{8} * members * (to - from) / nodes + 64));
        heap::AttributesFirstTypes types;
        // The slice's keys by address: an index into slice.keys.
        absl::flat_hash_map<PyObject*, uint32_t> key_index;
        std::vector<uint32_t> targets;
        std::vector<PyObject*> tos;
        for (size_t u = from; u < to; ++u) {
          const uint32_t b = graph.out_begin[u], end = graph.out_begin[u + 1];
          if (b == end) continue;
          if (end - b > kLaneEdges) {
            slice.deferred.push_back(static_cast<uint32_t>(u));
            continue;
          }
          targets.clear();
          tos.clear();
          for (uint32_t e = b; e < end; ++e) {
            const uint32_t v = graph.out_targets[e];
            const uint32_t k = member_of.empty() ? v : member_of[v];
            if (k == kNoMember ||
                std::find(targets.begin(), targets.end(), k) != targets.end()) {
              continue;  // no member, or a parallel edge
            }
            targets.push_back(k);
            tos.push_back(reinterpret_cast<PyObject*>(graph.addresses[v]));
          }
          if (targets.empty()) continue;
          const size_t mark = slice.held.size();
          bool far_item = false;  // an item past item_id (edges left out)
          const bool plain = heap::ForEachPlainEdgeFrom(
              reinterpret_cast<PyObject*>(graph.addresses[u]), tos, types,
              [&](size_t i, const heap::PlainEdge& edge) {
                uint32_t id = 0;
                switch (edge.kind) {
                  case heap::PlainEdge::kItem:
                    // Below the holder's edge count, unless the graph left
                    // edges out (to hidden objects).
                    if (static_cast<size_t>(edge.index) >= kLaneEdges) {
                      far_item = true;
                      return;
                    }
                    id = item_id[edge.index];
                    break;
                  case heap::PlainEdge::kAttribute: {
                    auto [it, added] = key_index.try_emplace(
                        edge.key, static_cast<uint32_t>(slice.keys.size()));
                    if (added) slice.keys.push_back(edge.key);
                    id = kKeyCode | it->second;
                    break;
                  }
                  case heap::PlainEdge::kClass:
                    id = class_id;
                    break;
                  case heap::PlainEdge::kInstanceDict:
                    id = dict_id;
                    break;
                }
                slice.held.emplace_back(targets[i], id);
              });
          if (!plain || far_item) {
            slice.held.resize(mark);
            slice.deferred.push_back(static_cast<uint32_t>(u));
          }
        }
      },
      [&] { return stop.Check(); });
  if (!named) return false;
  // The keys' texts need Python (a key's UTF-8): named here, then put in
  // place on the lanes.
  std::vector<std::vector<uint32_t>> key_ids(slices.size());
  for (size_t s = 0; s < slices.size(); ++s) {
    for (PyObject* key : slices[s].keys) {
      key_ids[s].push_back(texts.OfAttribute(key));
    }
  }
  lanes.For(nodes, [&](size_t from, size_t) {
    const size_t s = from / grain;
    if (key_ids[s].empty()) return;
    for (auto& [member, id] : slices[s].held) {
      if ((id & kKeyCode) != 0) id = key_ids[s][id & ~kKeyCode];
    }
  });
  return true;
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
  heap::SharedGraph graph = engine_->Shared(graph_options);
  if (!graph.ok()) return graph.status();
  if (absl::Status s = CheckQuestionMemory(&*graph, work); !s.ok()) return s;
  // Without dead members `wanted` is the set's addresses, unpacked.
  return LabelParts(*graph, nullptr, set, c, /*force_in_and=*/false,
                    dead.empty() ? &wanted : nullptr);
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
    const KindedSet& set, const Classifier& c, bool force_in_and,
    const std::vector<uintptr_t>* unpacked) {
  if (absl::Status s = CanLabel(c); !s.ok()) return s;
  const std::vector<Classifier::Part>& parts = c.parts();
  const heap::HeapGraph* graph = &graph_ref;
  // From here to the end no Python code runs and no thread state is
  // swapped (the question holds the target current), so the GIL stays held
  // and what the walk found stays alive.
  const std::vector<uint32_t> node_of = NodesOf(*graph, set, unpacked);
  const std::vector<size_t> dead = DeadMembers(set);
  // Which members are kept: alive and still the objects recorded (same
  // type name as recorded: addresses are reused). Usually every member
  // is: then `node_of` serves as the kept members' nodes and the lists
  // are never made (at ten million members they were 160 MB of fresh
  // memory a question).
  //
  // Reading every member's type is plain memory, done on the lanes
  // (lanes.h) slice by slice, each listing the (kind, type) pairs it met;
  // naming a type may call Python, so names are compared on the caller,
  // once per pair met.
  using Pair = std::pair<uint32_t, PyTypeObject*>;  // (recorded kind, type)
  struct SliceCheck {
    absl::flat_hash_set<Pair> pairs;
    bool any_out = false;  // a member dead or no node
  };
  const size_t count = set.count();
  const heap::Lanes lanes = engine_->lanes();
  const size_t grain = lanes.grain();
  std::vector<SliceCheck> checks((count + grain - 1) / grain);
  // Whether member i is out for being dead or no node (the type check
  // comes after).
  std::vector<uint8_t> out_now;
  python::AssignHuge(out_now, count, uint8_t{0});
  auto type_of = [&](size_t i) {
    return Py_TYPE(reinterpret_cast<PyObject*>(graph->addresses[node_of[i]]));
  };
  lanes.For(count, [&](size_t from, size_t to) {
    SliceCheck& check = checks[from / grain];
    size_t d = std::lower_bound(dead.begin(), dead.end(), from) - dead.begin();
    Pair last{UINT32_MAX, nullptr};
    for (size_t i = from; i < to; ++i) {
      // Died since the set was made, or no node (dead: heapu members are
      // nodes).
      bool gone = node_of[i] == kNoNode;
      if (d < dead.size() && dead[d] == i) {
        ++d;
        gone = true;
      }
      if (gone) {
        out_now[i] = 1;
        check.any_out = true;
        continue;
      }
      // The members' headers are read in address order, but the heap's
      // objects sit in pools of different size classes, so the hardware
      // prefetcher alone loses the stream: fetch a few members ahead.
      if (i + kPrefetchAhead < to && node_of[i + kPrefetchAhead] != kNoNode) {
        __builtin_prefetch(reinterpret_cast<void*>(
            graph->addresses[node_of[i + kPrefetchAhead]]));
      }
      const Pair pair{set.kinds[i], type_of(i)};
      if (pair == last) continue;
      check.pairs.insert(pair);
      last = pair;
    }
  });
  // Each pair's verdict: the type's name is the kind recorded.
  absl::flat_hash_map<PyTypeObject*, std::string> type_names;
  absl::flat_hash_map<Pair, bool> same;
  bool all_kept = true;
  for (const SliceCheck& check : checks) {
    all_kept = all_kept && !check.any_out;
    for (const Pair& pair : check.pairs) {
      auto [verdict, added] = same.emplace(pair, false);
      if (!added) continue;
      auto [name, named] = type_names.emplace(pair.second, std::string());
      if (named) name->second = namer_.Name(pair.second);
      verdict->second = name->second == (*set.kind_names)[pair.first];
      all_kept = all_kept && verdict->second;
    }
  }
  // The members kept and their nodes, when some are left out.
  std::vector<size_t> keep;
  std::vector<uint32_t> kept_nodes;
  if (!all_kept) {
    python::ReserveHuge(keep, count);
    python::ReserveHuge(kept_nodes, count);
    for (size_t i = 0; i < count; ++i) {
      if (out_now[i] != 0) continue;
      // Every pair was met by the lanes; none can be new here (nothing
      // ran in the target since), but a pair not found is not kept.
      const auto verdict = same.find(Pair{set.kinds[i], type_of(i)});
      if (verdict == same.end() || !verdict->second) continue;
      keep.push_back(i);
      kept_nodes.push_back(node_of[i]);
    }
  }
  // Kept member k is node keep_node[k].
  const std::vector<uint32_t>& keep_node = all_kept ? node_of : kept_nodes;
  LiveKinds out;
  if (all_kept) {  // every member: the columns as they are
    out.live = set;
    out.live.dead = 0;
  } else {
    out.live = set.Subset(keep);
  }
  const size_t n = keep_node.size();
  // Polled per member (and per referrer for Via): past the pause limit, or
  // cancelled, the question ends with its status and the target runs.
  heap::QuestionStop& stop = engine_->question_stop();

  // Rcs, refdby and Via read each member's referrers from the caller's
  // reverse index when there is one, else from the graph's forward edges
  // in node order (no reverse index is built).
  const heap::ReverseIndex* reverse = reverse_in;
  // Rcs and X.refdby: the kind of every node under the base classifier
  // (Clodo for Rcs), rendered as in `graph_base_in_and`.
  std::vector<uint32_t> graph_clodo;
  std::shared_ptr<std::vector<std::string>> graph_names;
  std::optional<Classifier> graph_base;
  bool graph_base_in_and = false;

  for (size_t part_index = 0; part_index < parts.size(); ++part_index) {
    const Classifier::Part part = parts[part_index];
    Labels labels;
    absl::flat_hash_map<std::string, uint32_t> index;
    // Sized where labels are Set one by one; Rcs and Via pack theirs once
    // (a column of n made here would be replaced unread).
    auto intern = [&](const std::string& s) {
      return Labels::Intern(s, index, *labels.names);
    };
    const bool in_and = force_in_and || parts.size() > 1;
    switch (part) {
      case Classifier::kModule: {
        labels.of.resize(n);
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
        labels.of.resize(n);
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
        labels.of.resize(n);
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
        // Each member's referrer kinds: from the caller's reverse index,
        // else from one pass over the forward edges, which keeps the first
        // kind met per member and (member, kind) pairs for the other
        // kinds (most members are held by objects of one kind), then
        // buckets those by member (BucketByMember).
        constexpr uint32_t kNone = UINT32_MAX;
        std::vector<uint32_t> first_kind, more_begin, more_kinds;
        if (reverse == nullptr) {
          const std::vector<uint32_t> member_of =
              MembersOfNodes(graph->size(), keep_node);
          python::AssignHuge(first_kind, n, kNone);
          std::vector<std::pair<uint32_t, uint32_t>> more;  // (member, kind)
          for (uint32_t u = 0; u < graph->size(); ++u) {
            if (stop.Poll()) return stop.status();
            const uint32_t b = graph->out_begin[u],
                           end = graph->out_begin[u + 1];
            if (b == end) continue;
            const uint32_t kind = graph_clodo[u];
            for (uint32_t e = b; e < end; ++e) {
              const uint32_t v = graph->out_targets[e];
              const uint32_t k = member_of.empty() ? v : member_of[v];
              if (k == kNoMember) continue;
              uint32_t& f = first_kind[k];
              if (f == kNone) {
                f = kind;
              } else if (f != kind) {
                more.emplace_back(k, kind);
              }
            }
          }
          BucketByMember(n, {&more}, more_begin, more_kinds);
        }
        // Each distinct set of referrer kinds is rendered and interned
        // once: a member looks its set up by kind indexes. Member k's set:
        auto kinds_of = [&](size_t k, std::vector<uint32_t>& kinds) {
          kinds.clear();
          if (reverse == nullptr) {
            if (first_kind[k] != kNone) kinds.push_back(first_kind[k]);
            kinds.insert(kinds.end(), more_kinds.begin() + more_begin[k],
                         more_kinds.begin() + more_begin[k + 1]);
          } else {
            const uint32_t v = keep_node[k];
            for (uint32_t e = reverse->in_begin[v];
                 e < reverse->in_begin[v + 1]; ++e) {
              kinds.push_back(graph_clodo[reverse->in_sources[e]]);
            }
          }
        };
        SetLabels sets(graph_names->size());
        std::vector<std::string> kind_names;
        // The label of a set not met before (rendered on the caller).
        auto label_of_set = [&](std::vector<uint32_t>& kinds) {
          uint32_t& label = sets.Slot(kinds);
          if (label == SetLabels::kNoLabel) {
            kind_names.clear();
            for (uint32_t kk : kinds) kind_names.push_back((*graph_names)[kk]);
            label = intern(RenderRcs(kind_names, in_and));
          }
          return label;
        };
        // Collected plainly and packed once at their final width (Set
        // would widen the packed column as labels grow, copying it).
        std::vector<uint32_t> label_of;
        python::AssignHuge(label_of, n, uint32_t{0});
        // The sets are found on the lanes, slice by slice: each slice
        // numbers the sets it meets in its own order (a table of one slot
        // per kind each: for the few kinds of a heap's referrers); the
        // caller labels each slice's sets in slice order (so labels are
        // numbered in order of first use, as one pass would number them),
        // and the lanes put the labels in place. With very many kinds the
        // slot tables would be large: then one pass on the caller.
        constexpr size_t kSliceTableKinds = size_t{1} << 16;
        if (graph_names->size() > kSliceTableKinds) {
          std::vector<uint32_t> kinds;
          for (size_t k = 0; k < n; ++k) {
            if (stop.Poll()) return stop.status();
            kinds_of(k, kinds);
            label_of[k] = label_of_set(kinds);
          }
          labels.of = PackedUints::From(label_of);
          break;
        }
        struct SliceSets {
          explicit SliceSets(size_t kinds) : local(kinds) {}
          SetLabels local;
          std::vector<std::vector<uint32_t>> sets;  // by local number
          std::vector<uint32_t> label;              // by local number
        };
        const size_t grain = lanes.grain();
        std::vector<std::optional<SliceSets>> slices((n + grain - 1) / grain);
        const bool found = lanes.For(
            n,
            [&](size_t from, size_t to) {
              SliceSets& slice =
                  slices[from / grain].emplace(graph_names->size());
              std::vector<uint32_t> kinds;
              for (size_t k = from; k < to; ++k) {
                uint32_t* slot = nullptr;
                if (reverse == nullptr && first_kind[k] != kNone &&
                    more_begin[k + 1] - more_begin[k] <= 1) {
                  // Held by referrers of one kind, as most members are, or
                  // of two (an int held by an instance and a tuple): the
                  // slot without building the set (only a new one is
                  // kept, as `kinds`).
                  const uint32_t f = first_kind[k];
                  if (more_begin[k + 1] == more_begin[k]) {
                    slot = &slice.local.OfOne(f);
                    if (*slot == SetLabels::kNoLabel) kinds = {f};
                  } else {
                    const uint32_t other = more_kinds[more_begin[k]];
                    slot = &slice.local.OfTwo(f, other);
                    if (*slot == SetLabels::kNoLabel) kinds = {f, other};
                  }
                } else {
                  kinds_of(k, kinds);
                  slot = &slice.local.Slot(kinds);  // normalizes
                }
                uint32_t& local = *slot;
                if (local == SetLabels::kNoLabel) {
                  local = static_cast<uint32_t>(slice.sets.size());
                  slice.sets.push_back(kinds);
                }
                label_of[k] = local;
              }
            },
            [&] { return stop.Check(); });
        if (!found) return stop.status();
        for (std::optional<SliceSets>& slice : slices) {
          for (std::vector<uint32_t>& kinds : slice->sets) {
            slice->label.push_back(label_of_set(kinds));
          }
        }
        lanes.For(n, [&](size_t from, size_t to) {
          const std::vector<uint32_t>& label = slices[from / grain]->label;
          for (size_t k = from; k < to; ++k) label_of[k] = label[label_of[k]];
        });
        labels.of = PackedUints::From(label_of);
        break;
      }
      case Classifier::kVia: {
        // Each referrer's edges to members are named together with the
        // target swapped in (one scan of a container holding many of
        // them), each distinct edge text gets an index as it is named, and
        // each distinct set of texts is rendered and interned once (most
        // members are held one way: an array lookup). Referrers come from
        // the graph's edges in node order, most named on the lanes
        // (NamePlainEdges: lists, tuples, instances) and the rest here; a
        // member's referrers from the reverse index when the caller has
        // one, all named here. Text ids differ between the two ways, the
        // labels do not: a set's label is its texts' reprs, sorted.
        constexpr uint32_t kNone = UINT32_MAX;
        std::vector<std::pair<uint32_t, uint32_t>> held;  // (member, text)
        // One pair per edge into a member at most: reserved (huge pages)
        // rather than grown by doubling, which copied and faulted in twice
        // its size.
        python::ReserveHuge(held, std::min<size_t>(graph->out_targets.size(),
                                                   size_t{8} * n + 64));
        // Each distinct text gets the next id as it is first met
        // (heap::EdgeTexts): a list of a million members has a million
        // texts "[i]", each kept as its index until a label shows it.
        heap::EdgeTexts texts;
        // What the lanes named, slice by slice (the forward edges' way).
        std::vector<LaneNames> lane_names;
        {
          std::vector<uint32_t> targets;
          std::vector<PyObject*> tos;
          // Names the edges from node u to the members in `targets`.
          auto name_from = [&](uint32_t u) {
            RoomFor(tos, targets.size());
            tos.clear();
            for (uint32_t k : targets) {
              tos.push_back(
                  reinterpret_cast<PyObject*>(graph->addresses[keep_node[k]]));
            }
            heap::ForEachEdgeTextFrom(
                reinterpret_cast<PyObject*>(graph->addresses[u]), tos, texts,
                [&](size_t i, uint32_t id) {
                  held.emplace_back(targets[i], id);
                });
          };
          python::ScopedTargetSwap swap(ts_,
                                        python::ScopedTargetSwap::Use::kRead);
          if (reverse == nullptr) {
            const std::vector<uint32_t> member_of =
                MembersOfNodes(graph->size(), keep_node);
            // Most edges are named on the lanes; the referrers they leave
            // (dicts, functions, long lists, ...) are named here, in node
            // order.
            if (!NamePlainEdges(*graph, n, member_of, lanes, stop, texts,
                                lane_names)) {
              return stop.status();
            }
            std::vector<uint32_t> seen;  // last referrer named
            for (const LaneNames& slice : lane_names) {
              for (const uint32_t u : slice.deferred) {
                if (stop.Poll()) return stop.status();
                if (seen.empty()) python::AssignHuge(seen, n, kNone);
                RoomFor(targets, graph->out_begin[u + 1] - graph->out_begin[u]);
                targets.clear();
                for (uint32_t e = graph->out_begin[u];
                     e < graph->out_begin[u + 1]; ++e) {
                  const uint32_t v = graph->out_targets[e];
                  const uint32_t k = member_of.empty() ? v : member_of[v];
                  if (k == kNoMember || seen[k] == u) continue;  // parallel
                  seen[k] = u;
                  targets.push_back(k);
                }
                if (!targets.empty()) name_from(u);
              }
            }
          } else {
            std::vector<std::pair<uint32_t, uint32_t>> by_source;
            for (size_t k = 0; k < n; ++k) {
              const uint32_t v = keep_node[k];
              uint32_t last = kNone;
              for (uint32_t e = reverse->in_begin[v];
                   e < reverse->in_begin[v + 1]; ++e) {
                const uint32_t u = reverse->in_sources[e];
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
        // The text indexes bucketed by member.
        std::vector<uint32_t> first, by_member;
        std::vector<const MemberPairs*> parts_held;
        parts_held.reserve(lane_names.size() + 1);
        for (const LaneNames& slice : lane_names) {
          parts_held.push_back(&slice.held);
        }
        parts_held.push_back(&held);
        BucketByMember(n, parts_held, first, by_member);
        lane_names.clear();
        SetLabels sets(texts.size());
        std::vector<uint32_t> ids;
        // Labels can number as many as members: collected plainly and
        // packed once at their final width, not widened as they grow.
        std::vector<uint32_t> label_of;
        python::ReserveHuge(label_of, n);
        // A member holding each label: the labels are counted first and
        // rendered after, into names reserved at their number (a list of
        // a million members has a million labels, and growing their
        // vector by doubling copied and faulted in twice its size).
        std::vector<uint32_t> shown_by;
        python::ReserveHuge(shown_by, n);  // as many as members, at most
        for (size_t k = 0; k < n; ++k) {
          if (stop.Poll()) return stop.status();
          uint32_t& label = sets.Of(by_member.data() + first[k],
                                    first[k + 1] - first[k], ids);
          if (label == SetLabels::kNoLabel) {
            label = static_cast<uint32_t>(shown_by.size());
            shown_by.push_back(static_cast<uint32_t>(k));
          }
          label_of.push_back(label);
        }
        // Distinct sets of distinct texts render distinct labels (each
        // text a Python literal, two or more joined by ", "): no lookup
        // by the label's text. Rendering is plain C++: on the lanes, each
        // label into its own place.
        python::ReserveHuge(*labels.names, shown_by.size());
        labels.names->resize(shown_by.size());
        const bool rendered = lanes.For(
            shown_by.size(),
            [&](size_t from, size_t to) {
              std::vector<uint32_t> set_ids;
              std::vector<std::string> relations;
              for (size_t j = from; j < to; ++j) {
                const uint32_t k = shown_by[j];
                if (first[k + 1] - first[k] == 1) {  // held one way
                  const uint32_t t = by_member[first[k]];
                  const int64_t item = texts.ItemIndex(t);
                  (*labels.names)[j] = item >= 0
                                           ? RenderItemVia(item, in_and)
                                           : RenderVia({texts.Text(t)}, in_and);
                  continue;
                }
                set_ids.assign(by_member.begin() + first[k],
                               by_member.begin() + first[k + 1]);
                SetLabels::Normalize(set_ids);
                relations.clear();
                for (uint32_t t : set_ids) relations.push_back(texts.Text(t));
                (*labels.names)[j] = RenderVia(relations, in_and);
              }
            },
            [&] { return stop.Check(); });
        if (!rendered) return stop.status();
        labels.of = PackedUints::From(label_of);
        break;
      }
      default: {
        // Parts of recorded data.
        KindedSet one = out.live.WithStoredClassifier(Classifier(part));
        if (part == Classifier::kType || part == Classifier::kClodo ||
            part == Classifier::kDictOf) {
          labels.of.resize(n);
          for (size_t k = 0; k < n; ++k) {
            labels.of.Set(k, intern(one.LabelNames()[one.LabelOf(k)]));
          }
        } else if (part == Classifier::kSize) {
          labels.of.resize(n);
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
    const heap::HeapGraph& graph, const heap::ReverseIndex* reverse,
    const Classifier& base, bool in_and, std::vector<uint32_t>* kinds,
    std::shared_ptr<std::vector<std::string>>* names) {
  // Type and Clodo (byrcs): the kinds alone, no set packed.
  if (base.is(Classifier::kClodo) || base.is(Classifier::kType)) {
    auto kind_names = std::make_shared<std::vector<std::string>>();
    std::vector<uint32_t> type_kinds;
    const bool clodo = base.is(Classifier::kClodo);
    ClassifyKinds(namer_, graph.addresses, clodo ? &graph.addresses : nullptr,
                  clodo ? type_kinds : *kinds, clodo ? kinds : nullptr,
                  *kind_names, /*key_offsets=*/nullptr, engine_->lanes());
    *names = std::move(kind_names);
    return absl::OkStatus();
  }
  KindedSet all = Describe(graph.addresses, &graph.sizes, &graph.addresses);
  const bool single = base.parts().size() == 1;
  if (single && !base.NeedsLiveObjects() &&
      !(in_and && base.is(Classifier::kSize))) {
    // Recorded data (Size, Id, Unity, Type.dictof): no per-node check
    // against the graph is needed.
    KindedSet stored = all.WithStoredClassifier(base);
    *kinds = stored.labels.of.ToVector();
    *names = stored.labels.names;
    return absl::OkStatus();
  }
  // Every node is alive (this question's walk found it), so LabelParts
  // keeps them all, in the graph's order.
  absl::StatusOr<LiveKinds> labelled =
      LabelParts(graph, reverse, all, base, /*force_in_and=*/single && in_and,
                 &graph.addresses);
  if (!labelled.ok()) return labelled.status();
  if (labelled->live.count() != graph.addresses.size()) {
    return absl::InternalError("refdby: the graph's nodes changed");
  }
  if (single) {
    *kinds = labelled->parts[0].of.ToVector();
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
  *kinds = joined.of.ToVector();
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

}  // namespace annex::glue
