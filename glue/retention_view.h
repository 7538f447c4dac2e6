// RetentionView: the session's "why is it alive?" service, the C++ face of
// hp's x.sp / x.referrers / x.dominos ... for hosts and for hp itself.
//
// Every question walks the target's heap again (one HeapGraph snapshot, the
// GIL held from the walk to the last answer) and uses only the members of
// the given set that this walk still finds, so no stale address is ever
// dereferenced (docs/design.md rule 10). Sets are glue::KindedSets
// (heap_view.h): from HeapView::Heap(), from another answer, or from addresses
// a host knows (Find()).
//
// A host calls it on the annex thread, through the runtime:
//
//   glue::Session* session = monitor.session();
//   auto access = session->Get<glue::AnnexAccess>();
//   (*access)->runtime().Run([&](const python::ThreadStates&) {
//     auto view = session->Get<glue::RetentionView>();
//     absl::StatusOr<glue::KindedSet> leak = (*view)->Find({leak_address});
//     absl::StatusOr<glue::PathsResult> paths = (*view)->PathsTo(*leak);
//     for (const glue::RetentionPath& p : paths->paths) {
//       // p.root_name == "sys.modules"; p.edges[i].kind, .label, .name;
//       // p.text == "%R.sys.modules['app'].__dict__['cache']"
//     }
//     absl::StatusOr<uint64_t> bytes = (*view)->RetainedSize(*leak);
//   });
//
// Errors are absl::Status: FailedPrecondition when the session has no
// annex or the target is finalizing, InvalidArgument for bad options.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "glue/heap_view.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/graph.h"

namespace annex::glue {

class Session;

// One step of a path: how `from` holds `to`.
struct PathEdge {
  // kAttribute, kDictValue, kIndex, kFrameLocal, kInternal, ...
  heap::EdgeKind kind = heap::EdgeKind::kInternal;
  // Python syntax appended to the holder's expression: ".cache", "['k']",
  // "[3]", ".f_locals['x']"; "<internal>" for an edge with no name.
  std::string label;
  // The bare name where there is one (attribute, local, free variable).
  std::string name;
  uintptr_t from = 0;
  uintptr_t to = 0;
};

// A path from a named root of the target to a member of the set.
struct RetentionPath {
  // "sys.modules", "sys", "builtins", "thread <id> frame <depth>", ...
  std::string root_name;
  // How the root holds the first object: "" (it is the root's object) or,
  // for a running frame, ".f_globals", ".f_locals['x']", ...
  std::string root_edge;
  std::vector<PathEdge> edges;
  // "%R.sys.modules['app'].__dict__['registry']['handlers'][3]"; from a
  // given source (PathsOptions::sources) "<app.Holder at 0x7f..>.items[3]"
  // and root_name, root_edge are empty.
  std::string text;
};

struct PathsOptions {
  // Paths never pass through these objects (addresses; dead ones ignored).
  std::vector<uintptr_t> avoid_nodes;
  // Paths never use these references (from, to); ones that no longer exist
  // are ignored. To find the next route, avoid an edge of the first path.
  std::vector<std::pair<uintptr_t, uintptr_t>> avoid_edges;
  // At most this many paths; 0 means no limit.
  size_t max_paths = 20;
  // Heapy's src: paths start at these objects (addresses; dead ones
  // ignored) instead of the roots. nullopt: the roots.
  std::optional<std::vector<uintptr_t>> sources;
  // Steps (0 the first, -1 the last) whose references, over all the
  // shortest paths found under the options above, are avoided too: the
  // next route (Heapy's copy_but_avoid_edges_at_levels). Two searches over
  // one walk; PathsResult::avoided_edges lists what the first one added.
  std::vector<int> avoid_levels;
};

struct PathsResult {
  // All shortest paths to the members nearest to the roots (or sources), in
  // the order (root or source, then objects along the path).
  std::vector<RetentionPath> paths;
  // True when max_paths cut the list short.
  bool truncated = false;
  // How many shortest paths there are in all, listed or not (Heapy's
  // numpaths; heap::ShortestPaths::count: counted, never enumerated;
  // saturates at 2**128 - 1).
  absl::uint128 num_paths = 0;
  // Edges on each path (all have the same); 0 without paths.
  size_t length = 0;
  // With PathsOptions::sources: how many of them are alive now.
  size_t live_sources = 0;
  // With PathsOptions::avoid_levels: the (from, to) references at those
  // steps that were avoided besides avoid_edges.
  std::vector<std::pair<uintptr_t, uintptr_t>> avoided_edges;
  // Members of the set found alive by this walk.
  size_t live_members = 0;
  // Of those, the ones not reachable from any root (heapu members: kept by
  // C references, or cyclic garbage): they have no path.
  size_t unreachable_members = 0;
};

// A reference with its Python-level name (Heapy's pathsin / pathsout).
struct NamedReference {
  uintptr_t from = 0;
  uintptr_t to = 0;
  std::string from_kind;
  std::string to_kind;
  PathEdge edge;
};

// A root of the target's heap, for hp.Root: the named root, how it holds
// its object (roots.h: "" or e.g. ".f_globals", ".f_locals['x']"), how
// path searches use it, and for kAlias the spelling paths use for that
// object instead (a running frame's globals:
// "%R.sys.modules['app'].__dict__").
struct RootEntry {
  std::string name;
  std::string edge;
  heap::RootUse use = heap::RootUse::kStart;
  std::string alias;
  uintptr_t address = 0;
  std::string kind;  // the object's Clodo kind
};

// Options of ReferencePattern (Heapy's get_rp arguments).
struct PatternOptions {
  // Levels of rows below the set (Heapy's default: 7).
  int depth = 7;
  // Kinds made into rows per row, largest first (1..26: one letter each);
  // the rest are counted in PatternRow::dropped.
  size_t max_children = 10;
  // At most this many rows (PatternResult::truncated says more were due).
  size_t max_rows = 1000;
  // How a row's next level is grouped into kinds (Heapy's er).
  Classifier er;
  // The next level of a row is the immediate dominators of its objects
  // (Heapy's imdom) instead of their referrers.
  bool imdom = false;
  // Rows numbered level by level instead of depth first (Heapy's bf).
  bool breadth_first = false;
  // A row's next level leaves out the objects of the row and of the rows
  // above it (Heapy's nocyc).
  bool nocyc = false;
  // Heapy's ref='gc' (and 'gcx'): a row's next level is the referrers the
  // target's gc would report (gc.get_referrers): gc-tracked objects whose
  // tp_traverse visits one of the row's objects. Not with imdom.
  bool gc_referrers = false;
  // Heapy's src: only referrers reachable from these objects (addresses;
  // dead ones ignored) count, and a row made of them alone ends there.
  // nullopt: the roots. Not with imdom.
  std::optional<std::vector<uintptr_t>> sources;
  // Which rows are not followed (Heapy's stopkind); row 0 always is:
  // with stop_filter, rows all of whose objects it keeps (it is given
  // every object of the walk and returns those of the stop kind); else
  // with stop_kinds, rows whose every object has one of those kinds (Type
  // or Clodo name: "dict", "dict of module"); else with stop_default,
  // Heapy's default: modules, types, their dicts ("dict of module", "dict
  // of type"), code and frames; else none.
  std::function<absl::StatusOr<KindedSet>(const KindedSet &all)> stop_filter;
  std::vector<std::string> stop_kinds;
  bool stop_default = true;
};

// One row of a reference pattern.
struct PatternRow {
  // Heapy's name: "_" (the set), "a", "b", ... (its kinds), "aa", "a3b".
  std::string label;
  std::string kind;  // under PatternOptions::er
  int depth = 0;
  int parent = -1;
  // '-' followed below; '+' more past the depth; 'S' a stop kind; '^' the
  // same objects as row `seen`; 'R' nothing refers to it (or a src row).
  char mark = 'R';
  int seen = -1;
  // Kinds left out by max_children.
  size_t dropped = 0;
  // The row's objects as this walk saw them (partitioned by Clodo).
  KindedSet set;
};

struct PatternResult {
  std::vector<PatternRow> rows;  // empty when no member is alive now
  // True when max_rows cut the pattern short.
  bool truncated = false;
  // The classifier's header, e.g. "Kind (class / dict of class)".
  std::string header;
  // Members of the set found alive by this walk; src objects alive.
  size_t live_members = 0;
  size_t live_sources = 0;
};

// RetentionView::PatternLinks: how the objects of each row of a path
// through a reference pattern refer to the objects of the row above.
struct PatternLinks {
  struct Link {
    uintptr_t from = 0;
    uintptr_t to = 0;
    std::string text;  // the reference as Python, "['k']", ".attr"
  };
  // links[k]: from the live members of rows[k] to those of rows[k + 1].
  std::vector<std::vector<Link>> links;
  // The last row's live members: (address, Heapy's brief of the one
  // object, "<1 str: 'hello'>").
  std::vector<std::pair<uintptr_t, std::string>> last;
};

class RetentionView {
 public:
  static absl::StatusOr<std::unique_ptr<RetentionView>> Create(
      Session &session);

  // All functions below: Where: annex thread, GIL held, annex current.
  // Each walks the heap once.

  // The objects at `addresses` that are alive and reachable now, with their
  // kinds and sizes. Unknown or dead addresses are left out.
  absl::StatusOr<KindedSet> Find(const std::vector<uintptr_t> &addresses);

  // Heapy's shpaths: all shortest paths from the roots to the set's live
  // members, each edge typed and named. Members alive but not reachable
  // from the roots (heapu) have none: they are counted in
  // unreachable_members. With options.sources, from those objects instead.
  absl::StatusOr<PathsResult> PathsTo(const KindedSet &set,
                                      const PathsOptions &options = {});

  // The roots paths start at (Heapy's Root), in the engine's order (roots.h).
  absl::StatusOr<std::vector<RootEntry>> Roots();
  // The objects the roots named `name` hold now (a named object, or every
  // reference of a running frame); NotFound when no root has that name.
  absl::StatusOr<KindedSet> RootObjects(const std::string &name);

  // Heapy's domisize: bytes freed if every live member went away (the
  // members plus what only they keep reachable).
  absl::StatusOr<uint64_t> RetainedSize(const KindedSet &set);
  // Heapy's dominos: those objects themselves.
  absl::StatusOr<KindedSet> Dominated(const KindedSet &set);
  // The immediate dominators of the set as a whole: for each live member,
  // its closest dominator outside the set (the roots' virtual super-root
  // gives none). Whole-graph dominator tree (Lengauer-Tarjan).
  absl::StatusOr<KindedSet> ImmediateDominators(const KindedSet &set);

  // The objects that refer to a live member (members included when they
  // refer to each other), from a reverse edge index of one walk. For
  // members not reachable from the roots (heapu), the walk also covers the
  // unreachable live objects, so their referrers are the real ones among
  // the objects the engine can see (the same for Referents, EdgesIn,
  // EdgesOut and ReferencePattern).
  absl::StatusOr<KindedSet> Referrers(const KindedSet &set);
  // The objects the live members refer to.
  absl::StatusOr<KindedSet> Referents(const KindedSet &set);
  // Every reference into / out of the live members, named.
  absl::StatusOr<std::vector<NamedReference>> EdgesIn(const KindedSet &set);
  absl::StatusOr<std::vector<NamedReference>> EdgesOut(const KindedSet &set);

  // Heapy's rp: the set's referrers grouped by kind, their referrers, ...
  // as rows (heap/reference_pattern.h), each with its objects.
  // InvalidArgument for a negative depth, max_children outside 1..26,
  // max_rows 0, or imdom with sources; FailedPrecondition for a Prod er
  // while the target's tracemalloc is off.
  absl::StatusOr<PatternResult> ReferencePattern(
      const KindedSet &set, const PatternOptions &options = {});
  // Heapy's rp.paths: for rows (a row of a pattern and its ancestors up
  // to row 0, in that order), every reference from a live member of one
  // row to a live member of the next, named, and the last row's members
  // as briefs. Read inside one question: nothing made in the target.
  absl::StatusOr<PatternLinks> PatternPathLinks(
      const std::vector<const KindedSet *> &rows);

 private:
  explicit RetentionView(HeapView *heap) : heap_(heap) {}
  HeapView *heap_;  // owned by the session, outlives this service
};

}  // namespace annex::glue
