// Shortest paths from the roots: layered BFS, backward marking, forward
// enumeration.
#include "monitor/heap/paths.h"

#include <algorithm>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "monitor/python/huge_pages.h"

namespace annex::heap {
namespace {

constexpr uint32_t kAvoided = UINT32_MAX - 1;
// A root index that starts no path (by its RootUse).
constexpr uint32_t kNoStart = UINT32_MAX;

// One bit per node.
class Bitmap {
 public:
  explicit Bitmap(uint32_t n) : words_((static_cast<size_t>(n) + 63) / 64, 0) {}
  bool Get(uint32_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  void Set(uint32_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void Clear(uint32_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  // Calls f(i) for each set bit i in [lo, hi], ascending, and clears it.
  template <typename F>
  void TakeRange(uint32_t lo, uint32_t hi, F f) {
    for (size_t w = lo >> 6; w <= (hi >> 6); ++w) {
      uint64_t bits = words_[w];
      words_[w] = 0;  // only bits in [lo, hi] are ever set here
      while (bits != 0) {
        f(static_cast<uint32_t>(w * 64 + __builtin_ctzll(bits)));
        bits &= bits - 1;
      }
    }
  }

 private:
  std::vector<uint64_t> words_;
};

uint64_t EdgeKey(uint32_t from, uint32_t to) {
  return (static_cast<uint64_t>(from) << 32) | to;
}

}  // namespace

std::vector<uint32_t> RootDistances(const HeapGraph& graph) {
  std::vector<uint32_t> dist(graph.size(), kUnreached);
  std::vector<uint32_t> queue;
  queue.reserve(graph.size());
  for (uint32_t r : graph.root_nodes) {
    if (dist[r] == kUnreached) {
      dist[r] = 0;
      queue.push_back(r);
    }
  }
  for (size_t head = 0; head < queue.size(); ++head) {
    const uint32_t v = queue[head];
    const uint32_t next = dist[v] + 1;
    for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
      const uint32_t w = graph.out_targets[e];
      if (dist[w] == kUnreached) {
        dist[w] = next;
        queue.push_back(w);
      }
    }
  }
  return dist;
}

absl::StatusOr<ShortestPaths> FindShortestPaths(
    const HeapGraph& graph, const NodeSet& targets,
    const ShortestPathOptions& options) {
  QuestionStop* const stop = options.stop;
  const uint32_t n = graph.size();
  for (uint32_t t : targets) {
    if (t >= n) return absl::InvalidArgumentError("target out of range");
  }
  for (uint32_t a : options.avoid_nodes) {
    if (a >= n) return absl::InvalidArgumentError("avoided node out of range");
  }
  if (options.sources != nullptr) {
    for (uint32_t s : *options.sources) {
      if (s >= n) return absl::InvalidArgumentError("source out of range");
    }
  }
  // Where paths start: the given sources, else the roots by their use
  // (graph.h). Indexes stay those of the roots, so that NodePath::root
  // names them; kNoStart marks the roots that start nothing.
  std::vector<uint32_t> starts;
  std::vector<uint32_t> fallback;  // roots that start paths in a 2nd search
  if (options.sources != nullptr) {
    starts = *options.sources;
  } else {
    starts.reserve(graph.root_nodes.size());
    for (uint32_t r = 0; r < graph.root_nodes.size(); ++r) {
      const RootUse use = graph.root_use(r);
      starts.push_back(use == RootUse::kStart ? graph.root_nodes[r] : kNoStart);
      if (use == RootUse::kFallback) fallback.push_back(r);
    }
  }
  const ReverseIndex* reverse = options.reverse;
  ReverseIndex own_reverse;  // options.reverse_when_deep
  if (reverse != nullptr &&
      reverse->in_begin.size() != static_cast<size_t>(n) + 1) {
    return absl::InvalidArgumentError("reverse index of another graph");
  }
  ShortestPaths result;
  if (targets.empty()) return result;

  absl::flat_hash_set<uint64_t> avoid_edges;
  for (const EdgeRef& e : options.avoid_edges) {
    avoid_edges.insert(EdgeKey(e.from, e.to));
  }
  const bool check_edges = !avoid_edges.empty();
  auto edge_ok = [&](uint32_t from, uint32_t to) {
    return !check_edges || !avoid_edges.contains(EdgeKey(from, to));
  };

  // Bitmaps stay in cache where a per-node array would not; dist is only
  // written for visited nodes and only read after a visited check.
  Bitmap visited(0), is_target(n), on_path(n);  // visited: per search
  python::HugeArray<uint32_t> dist = python::NewHugeArray<uint32_t>(n);
  for (uint32_t t : targets) is_target.Set(t);

  // Layered BFS. order[layer_start[k] .. layer_start[k + 1]) is layer k.
  // When it reaches no target and some roots are fallbacks, it runs again
  // with those as starts too.
  // Room for every node at once (pages are touched only as it fills):
  // growing it by doubling copied it into fresh 4 KiB pages.
  std::vector<uint32_t> order;
  python::ReserveHuge(order, n);
  std::vector<size_t> layer_start;
  size_t scanned = 0;  // edges the last search read
  bool found = false;
  uint32_t layer = 0;
  for (bool search = true; search;) {
    visited = Bitmap(n);
    for (uint32_t a : options.avoid_nodes) {
      visited.Set(a);
      dist[a] = kAvoided;
    }
    order.clear();
    layer_start.assign(1, 0);
    layer = 0;
    scanned = 0;
    for (uint32_t r : starts) {
      if (r != kNoStart && !visited.Get(r)) {
        visited.Set(r);
        dist[r] = 0;
        order.push_back(r);
        found |= is_target.Get(r);
      }
    }
    while (!found) {
      const size_t begin = layer_start.back();
      const size_t end = order.size();
      if (begin == end) break;
      layer_start.push_back(end);
      const uint32_t next = layer + 1;
      for (size_t i = begin; i < end; ++i) {
        if (stop != nullptr && stop->Poll()) return stop->status();
        // The queue is in discovery order, i.e. random addresses: fetch
        // the edge ranges of nodes a few steps ahead while this one is
        // scanned.
        if (i + 16 < end) __builtin_prefetch(&graph.out_begin[order[i + 16]]);
        if (i + 8 < end) {
          __builtin_prefetch(&graph.out_targets[graph.out_begin[order[i + 8]]]);
        }
        const uint32_t v = order[i];
        scanned += graph.out_begin[v + 1] - graph.out_begin[v];
        for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
          const uint32_t w = graph.out_targets[e];
          if (!visited.Get(w) && edge_ok(v, w)) {
            visited.Set(w);
            dist[w] = next;
            order.push_back(w);
            found |= is_target.Get(w);
          }
        }
      }
      layer = next;
    }
    search = !found && !fallback.empty();
    for (uint32_t r : fallback) starts[r] = graph.root_nodes[r];
    fallback.clear();
  }
  if (!found) return result;
  result.length = layer;
  auto at = [&](uint32_t v, uint32_t k) {
    return visited.Get(v) && dist[v] == k;
  };
  // A step v -> w of a shortest path (w at v's layer + 1): an allowed edge,
  // unless w has a preferred predecessor (graph.h preferred_in: the module
  // into its dict, sys.modules into the module) other than v that is on a
  // shortest path to w too; then paths enter w only from it, so a module's
  // globals read %R.sys.modules['m'].__dict__ once rather than once more
  // per function or thread that also holds them.
  Bitmap has_preferred(graph.preferred_in.empty() ? 0 : n);
  for (const auto& [node, from] : graph.preferred_in) {
    if (node < n && from < n) has_preferred.Set(node);
  }
  auto step_ok = [&](uint32_t v, uint32_t w) {
    if (!edge_ok(v, w)) return false;
    if (graph.preferred_in.empty() || !has_preferred.Get(w)) return true;
    auto it =
        std::lower_bound(graph.preferred_in.begin(), graph.preferred_in.end(),
                         std::pair<uint32_t, uint32_t>{w, 0});
    const uint32_t p = it->second;
    return p == v || !at(p, dist[w] - 1) || !edge_ok(p, w);
  };

  // Backward marking: a node at layer k lies on a shortest path when it has
  // an allowed edge to a marked node at layer k + 1; at the last layer the
  // marked nodes are the targets.
  // Re-scanning the visited layers reads the edges the search read; a
  // reverse index reads all of the graph's once and then only the marked
  // nodes' in-edges (the retention bench: 0.5 of a full search to build,
  // the marking over it a fraction of that).
  if (reverse == nullptr && options.reverse_when_deep &&
      scanned > graph.out_targets.size() / 3 * 2) {
    own_reverse = ReverseIndex::Build(graph);
    reverse = &own_reverse;
    result.built_reverse = true;
  }
  std::vector<uint32_t> frontier;
  for (size_t i = layer_start[layer]; i < order.size(); ++i) {
    if (is_target.Get(order[i])) {
      on_path.Set(order[i]);
      frontier.push_back(order[i]);
    }
  }
  if (reverse != nullptr) {
    std::vector<uint32_t> previous;
    for (uint32_t k = layer; k > 0; --k) {
      previous.clear();
      for (uint32_t w : frontier) {
        for (uint32_t i = reverse->in_begin[w]; i < reverse->in_begin[w + 1];
             ++i) {
          const uint32_t u = reverse->in_sources[i];
          if (!on_path.Get(u) && at(u, k - 1) && step_ok(u, w)) {
            on_path.Set(u);
            previous.push_back(u);
          }
        }
      }
      frontier.swap(previous);
    }
  } else {
    for (uint32_t k = layer; k-- > 0;) {
      for (size_t i = layer_start[k]; i < layer_start[k + 1]; ++i) {
        const uint32_t v = order[i];
        for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
          const uint32_t w = graph.out_targets[e];
          if (on_path.Get(w) && at(w, k + 1) && step_ok(v, w)) {
            on_path.Set(v);
            break;
          }
        }
      }
    }
  }

  // The number of shortest paths from each marked node to a target, layer
  // by layer from the targets back to the starts, each node's distinct
  // marked successors summed (the enumeration's steps below), saturating.
  {
    const absl::uint128 kMax = absl::Uint128Max();
    // Per node, written before it is read (a marked node of the last layer,
    // or of layer k once layer k + 1 is done) and only for marked nodes: a
    // dense array left uninitialized, where a hash map of the marked nodes
    // took most of the search (sp of a 250 000-object row).
    python::HugeArray<absl::uint128> paths_from =
        python::NewHugeArray<absl::uint128>(n);
    for (size_t i = layer_start[layer]; i < order.size(); ++i) {
      if (on_path.Get(order[i])) paths_from[order[i]] = 1;
    }
    std::vector<bool> level_wanted(layer, false);
    for (int l : options.edges_at_levels) {
      const int64_t k = l < 0 ? int64_t{layer} + l : l;
      if (k >= 0 && k < int64_t{layer}) level_wanted[k] = true;
    }
    // Each node's distinct successors, told apart by a bitmap cleared
    // after the node (a sort was most of the count for a list holding a
    // quarter of a million targets).
    std::vector<uint32_t> next;
    Bitmap in_next(n);
    for (uint32_t k = layer; k-- > 0;) {
      for (size_t i = layer_start[k]; i < layer_start[k + 1]; ++i) {
        if (stop != nullptr && stop->Poll()) return stop->status();
        const uint32_t v = order[i];
        if (!on_path.Get(v)) continue;
        next.clear();
        for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
          const uint32_t w = graph.out_targets[e];
          if (on_path.Get(w) && !in_next.Get(w) && at(w, k + 1) &&
              step_ok(v, w)) {
            in_next.Set(w);
            next.push_back(w);
          }
        }
        absl::uint128 sum = 0;
        for (uint32_t w : next) {
          in_next.Clear(w);
          const absl::uint128 c = paths_from[w];
          sum = c > kMax - sum ? kMax : sum + c;
          if (level_wanted[k]) result.level_edges.push_back({v, w});
        }
        paths_from[v] = sum;
      }
    }
    for (uint32_t s : starts) {
      if (s == kNoStart || !on_path.Get(s) || !at(s, 0)) continue;
      const absl::uint128 c = paths_from[s];
      result.count = c > kMax - result.count ? kMax : result.count + c;
    }
  }

  // Forward enumeration over the marked nodes, depth first. Each frame's
  // sorted distinct successors (parallel edges give one path) live in one
  // shared pool, so a path 400k edges long costs no allocation per step.
  struct Frame {
    size_t begin, end, cursor;
  };
  std::vector<Frame> stack;
  std::vector<uint32_t> pool;
  std::vector<uint32_t> path;
  // Distinct by a scratch bitmap; sorted by a sort when few, by reading
  // the bitmap back when many (a list's quarter of a million elements:
  // a scan of its id range instead of a sort). The bitmap is clear again
  // after each frame.
  Bitmap in_frame(n);
  auto push_frame = [&](uint32_t v) {
    const size_t begin = pool.size();
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t e = graph.out_begin[v]; e < graph.out_begin[v + 1]; ++e) {
      const uint32_t w = graph.out_targets[e];
      if (on_path.Get(w) && !in_frame.Get(w) && at(w, dist[v] + 1) &&
          step_ok(v, w)) {
        in_frame.Set(w);
        pool.push_back(w);
        lo = std::min(lo, w);
        hi = std::max(hi, w);
      }
    }
    const size_t count = pool.size() - begin;
    if (count > 256 && (hi - lo) / 64 < count * 4) {
      size_t out = begin;
      in_frame.TakeRange(lo, hi, [&](uint32_t w) { pool[out++] = w; });
    } else {
      for (size_t i = begin; i < pool.size(); ++i) in_frame.Clear(pool[i]);
      std::sort(pool.begin() + static_cast<ptrdiff_t>(begin), pool.end());
    }
    stack.push_back({begin, pool.size(), begin});
  };
  for (uint32_t r = 0; r < starts.size(); ++r) {
    const uint32_t s = starts[r];
    if (s == kNoStart || !on_path.Get(s) || !at(s, 0)) continue;
    path.assign(1, s);
    if (layer == 0) {
      if (options.max_paths && result.paths.size() == options.max_paths) {
        result.truncated = true;
        return result;
      }
      result.paths.push_back({r, path});
      continue;
    }
    stack.clear();
    pool.clear();
    push_frame(s);
    while (!stack.empty()) {
      if (stop != nullptr && stop->Poll()) return stop->status();
      Frame& top = stack.back();
      if (top.cursor == top.end) {
        pool.resize(top.begin);
        stack.pop_back();
        path.pop_back();
        continue;
      }
      const uint32_t w = pool[top.cursor++];
      path.push_back(w);
      if (path.size() == layer + 1) {
        if (options.max_paths && result.paths.size() == options.max_paths) {
          result.truncated = true;
          return result;
        }
        result.paths.push_back({r, path});
        path.pop_back();
        continue;
      }
      push_frame(w);
    }
  }
  return result;
}

}  // namespace annex::heap
