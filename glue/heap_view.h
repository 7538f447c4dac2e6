// HeapView: the session's heap service. It owns the heap engine for the
// session's annex and turns walks into KindedSets: identities with the kind
// (type) and size each object had when it was seen, so that later set
// algebra, partition tables and stats never dereference an address
// (docs/design.md rule 10). Questions that need live objects (paths, retained
// size, individual objects) walk again and use only objects confirmed alive
// by that walk, within the same GIL hold.
//
//   auto view = session.Get<HeapView>();
//   absl::StatusOr<KindedSet> h = (*view)->Heap();   // annex thread, GIL held
//   std::string table = h->PartitionTable();
#pragma once

#include <Python.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "glue/classifiers.h"
#include "glue/heap_record.h"
#include "glue/memory_budget.h"
#include "glue/object_text.h"
#include "glue/stat.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/lanes.h"
#include "monitor/heap/referrers.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/guards.h"

namespace annex::glue {

class Session;

// Identity over time of a set's members (python/death_watch.h): the watches
// taken when the members were seen alive. A member is still the object seen
// while its watch says so; once dead it stays dead, and a new object at its
// address is not a member.
struct Identity {
  std::vector<std::shared_ptr<python::WatchedObjects>> watches;

  // Whether the member at `address` is still the object seen. An address
  // no watch holds (a member of a set made without identity) counts as the
  // same. Where: GIL held.
  bool Same(uintptr_t address) const;
  // The watches of both (either may be null). Where: any thread.
  static std::shared_ptr<const Identity> Merge(
      const std::shared_ptr<const Identity>& a,
      const std::shared_ptr<const Identity>& b);
};

// A set of target objects, each with the kind and size it had when seen.
// Sorted by address. Plain data: any thread.
//
// Tables partition the set by `classifier` (Heapy's "er"; Clodo unless
// chosen otherwise): Type and Clodo read `kinds` / `clodo`, recorded by the
// walk; every other classifier's kind of each member is in `labels`.
//
// The members are stored compactly (packed_columns.h, about 6 bytes per
// object instead of 24): read them by index (addresses[i], kinds[i]) or
// iterator; write with push_back or Set.
struct KindedSet {
  PackedAddresses addresses;
  PackedUints kinds;  // index into *kind_names: the type's name
  PackedSizes sizes;
  std::shared_ptr<std::vector<std::string>> kind_names =
      std::make_shared<std::vector<std::string>>();
  // Heapy's Clodo kind of each member, an index into *kind_names: the
  // type's name, or for a dict "dict of X" (X the type of the object whose
  // attribute dict it is) or "dict (no owner)". Empty: no owner was looked
  // for; read `kinds` instead.
  PackedUints clodo;
  Classifier classifier;
  Labels labels;  // per member, unless classifier is Type or Clodo
  // Identity over time (null: none taken; members found alive count as
  // the same objects). Shared by subsets and copies.
  std::shared_ptr<const Identity> identity;
  // Members found dead and left out by PruneDead since the set was made.
  size_t dead = 0;
  // python::DeathWatchEpoch() when PruneDead last looked (0: never).
  uint64_t pruned_epoch = 0;

  size_t count() const { return addresses.size(); }
  uint64_t total_size() const;
  // Bytes this set holds in the annex (its vectors; per-member label
  // names and the identity watch only when no other set shares them), for
  // the memory budget.
  size_t MemoryBytes() const;
  // Gives back the columns' spare capacity (a set about to be kept).
  void ShrinkToFit();
  // The kind of member i under `classifier`, and the kind names.
  uint32_t LabelOf(size_t i) const;
  // The column LabelOf reads: kinds, Clodo kinds or labels.of.
  const PackedUints& LabelColumn() const;
  const std::vector<std::string>& LabelNames() const;

  struct Row {
    std::string kind;
    uint64_t count = 0;
    uint64_t size = 0;
    uint32_t label = 0;  // index into LabelNames()
  };
  // Rows by kind, largest total size first (ties: by count, then name).
  // With `limit`, the first `limit` rows only (the others are neither
  // ordered nor named), and how many rows there are in `*all_rows`.
  std::vector<Row> Rows(size_t limit = SIZE_MAX,
                        size_t* all_rows = nullptr) const;
  // Heapy's partition table; `max_rows` rows then a hint for more (Heapy
  // prints an 11th row rather than a hint for one more row).
  std::string PartitionTable(size_t max_rows = 10) const;
  // The rows without the objects (Heapy's x.stat): kinds, counts and sizes
  // under `classifier`, made at `time_made_us` (µs since the Unix epoch).
  Stat ToStat(int64_t time_made_us = 0) const;
  // The Stat of this set's `rows` (of Rows()), totals from the set.
  Stat StatOfRows(std::vector<Row> rows, int64_t time_made_us) const;
  // The members whose kind (under `classifier`) is `kind`; the result keeps
  // the classifier.
  KindedSet OfKind(const std::string& kind) const;
  // The members whose label is in `labels` (sorted label indexes).
  KindedSet OfLabels(const std::vector<uint32_t>& labels) const;
  // The members at the ascending indexes `keep`, with all their data.
  KindedSet Subset(const std::vector<size_t>& keep) const;
  // The same for the members of ascending runs of indexes.
  KindedSet SubsetOfRuns(const IndexRuns& keep) const;
  // One set per entry of `labels` (label indexes, no repeats): the members
  // of that label, in one pass over the set (Heapy's x.parts), so a
  // partition of many rows costs what one row does, not rows x members.
  std::vector<KindedSet> SplitByLabels(
      const std::vector<uint32_t>& labels) const;
  // The same members, partitioned by a classifier whose kinds come from
  // recorded data (Type, Clodo, Size, Id, Unity, and combinations of
  // them). Others need live objects: HeapView::Classify.
  KindedSet WithStoredClassifier(const Classifier& c) const;

  // Set algebra over identities (kinds and sizes travel with them). The
  // result is partitioned by Clodo, as Heapy's set operations are.
  static KindedSet Combine(const KindedSet& a, const KindedSet& b, char op);
};

// Leaves out the members of `set` that are no longer the objects seen (they
// died; their address may hold a new object now) and counts them in
// set.dead. Cheap when no watched object died since the last call.
// Where: GIL held.
void PruneDead(KindedSet& set);

// The indexes of the members of `set` that are no longer the objects seen
// (SameObject false), ascending: one look at the members near the deaths
// the watch remembers when those are few, not one lookup per member.
// Where: GIL held.
std::vector<size_t> DeadMembers(const KindedSet& set);

// Whether member i of `set` is still the object seen (see Identity::Same).
// Where: GIL held.
bool SameObject(const KindedSet& set, size_t i);

// Node ids of the members of `set` present in `graph` (alive now), members
// that died (by identity) left out even when a new object sits at their
// address; ascending. Where: GIL held, in the question that walked `graph`.
heap::NodeSet LiveNodes(const heap::HeapGraph& graph, const KindedSet& set);

// A reference point (hp.setref()): heap() then shows the reachable objects
// that are not live members of `reachable` (objects created since, or not
// in it), heapu() those not live members of `unreachable`. Kept sets with
// identity, so address reuse never hides a new object.
struct ReferencePoint {
  KindedSet reachable;
  KindedSet unreachable;
};

// Describes `sorted` objects (alive: GIL held since they were found) with
// their recorded `sizes`: type kinds and, when `owner_scan` is given, Clodo
// kinds with the dict owners found among those objects. Partitioned by
// Clodo. Each object's watch key offset (python::WatchedObjects::
// KeyOffset) goes to `*key_offsets` when given. Where: GIL held, any
// interpreter.
// The objects are read on `lanes` (monitor/heap/lanes.h); type names are
// made on the caller. `while_packing`, when given, runs on the caller once
// the kinds and key offsets are known, while a helper packs the set's
// columns (it must not touch the result); without it the caller and a
// helper share the packing.
KindedSet ClassifyObjects(const TypeNamer& namer,
                          const std::vector<uintptr_t>& sorted,
                          const std::vector<uint64_t>& sizes,
                          const std::vector<uintptr_t>* owner_scan,
                          std::vector<uint8_t>* key_offsets = nullptr,
                          heap::Lanes lanes = heap::Lanes(),
                          const std::function<void()>& while_packing = nullptr);
// The same kinds as plain vectors, without packing a set: each object's
// type kind into `kinds` and, when `owner_scan` is given, its Clodo kind
// into `*clodo` (then required), both indexes into `kind_names` (appended
// to). For
// questions that need kinds of many objects but keep none (the referrers'
// kinds of byrcs). Where: as ClassifyObjects.
void ClassifyKinds(const TypeNamer& namer, const std::vector<uintptr_t>& sorted,
                   const std::vector<uintptr_t>* owner_scan,
                   std::vector<uint32_t>& kinds, std::vector<uint32_t>* clodo,
                   std::vector<std::string>& kind_names,
                   std::vector<uint8_t>* key_offsets = nullptr,
                   heap::Lanes lanes = heap::Lanes());

// Per-part kinds of the live members of a set (HeapView::ClassifyParts).
struct LiveKinds {
  KindedSet live;             // the members alive now, kinds as recorded
  std::vector<Labels> parts;  // one per requested part, over live members
};

// A heap record (heap_record.h) of `heap`, a HeapView::Heap() result
// partitioned by Clodo: its partitions by Clodo and by Type, the largest
// `top_rows` rows of each (the rest one "<Other>" row), with `pause_us` and
// `time_us`; labels and RSS are the caller's. Where: any thread (plain
// data; run it off the annex thread to keep the target's pause to the walk).
HeapRecord MakeHeapRecord(KindedSet heap, size_t top_rows, int64_t pause_us,
                          int64_t time_us);

// HeapView::ReadTexts: per member of a set, whether it is alive now, and
// the texts of the alive members asked for, as (member index, text) in
// ascending index order.
struct MemberTexts {
  std::vector<char> alive;
  std::vector<std::pair<size_t, ObjectText>> texts;
};

// HeapView::ById: the live members and the first lines.
struct ByIdResult {
  KindedSet live;
  std::vector<std::string> lines;
};

class HeapView {
 public:
  static absl::StatusOr<std::unique_ptr<HeapView>> Create(Session& session);

  // Everything reachable from the target's roots, less the live members
  // of ref->reachable when `ref` is given, sized by `sizing` (heap/
  // sizing.h: by default sys.getsizeof plus each instance's attribute
  // values block; kGetsizeof for sys.getsizeof alone) for this set only:
  // every other answer sizes by the engine's default. With `keep` the
  // result carries an identity (watched until the last copy goes): a kept
  // set answers for its live members only. With `graph_out` (and no
  // `ref`) the same walk also records the edges and leaves the graph there,
  // node v being the result's member v (the heap records' retainers,
  // glue/retainers.h; about twice the walk's time). Where: annex thread,
  // GIL held, annex current.
  absl::StatusOr<KindedSet> Heap(
      const ReferencePoint* ref = nullptr, bool keep = true,
      heap::Sizing sizing = heap::Sizing::kExact,
      std::shared_ptr<const heap::HeapGraph>* graph_out = nullptr);
  // Tracked by the target's gc but unreachable (heapu), or one part of it
  // as CPython's collector would judge it, without collecting
  // (heap::UnreachableParts): kGarbage what a collection would find
  // unreachable (cyclic garbage), kHeld what it would keep (held by C
  // references, a value stack, a non-gc object); less the live members of
  // ref->unreachable when `ref` is given. Where: as Heap().
  enum class UnreachablePart { kAll, kGarbage, kHeld };
  absl::StatusOr<KindedSet> HeapU(const ReferencePoint* ref = nullptr,
                                  bool keep = true,
                                  UnreachablePart part = UnreachablePart::kAll);
  // The objects at `addresses` that are alive now (reachable, or tracked
  // by the gc but unreachable), described as Heap() describes them, with
  // identity; others are left out. Where: as Heap(). Walks.
  absl::StatusOr<KindedSet> FromAddresses(std::vector<uintptr_t> addresses);
  // Heapy's x.owners: the live objects whose attribute dict (a type's
  // tp_dict, a module's dict, an instance's existing __dict__) is a live
  // member of `set`, kept, partitioned by Clodo. Where: as Heap(). Walks.
  absl::StatusOr<KindedSet> Owners(const KindedSet& set);
  // A reference point of now: heap() and heapu(), kept. Where: as Heap().
  absl::StatusOr<ReferencePoint> MakeReferencePoint();

  // The reference point set last by any hp of this session (consoles and
  // host namespaces each have their own; this one is for the watchdog's
  // report), or null. Where: annex thread.
  const std::shared_ptr<const ReferencePoint>& latest_ref() const {
    return latest_ref_;
  }
  void set_latest_ref(std::shared_ptr<const ReferencePoint> ref) {
    latest_ref_ = std::move(ref);
  }

  // The members of `set` alive now (found by this walk, reachable or
  // not, and of the kind recorded) and the texts (object_text.h) of those
  // alive members that `want` picks (asked in index order). Never runs
  // target code. Where: as Heap(). Walks again.
  absl::StatusOr<MemberTexts> ReadTexts(
      const KindedSet& set, const std::function<bool(size_t)>& want);
  // The objects `reach` reads from the members of `set` alive now: it is
  // called inside this question with each live member and appends the
  // addresses of objects read from it in place (so alive too); they are
  // described and kept as FromAddresses does (Heapy's maprox). `reach`
  // must create nothing and run no code. Where: as Heap(). Walks twice.
  absl::StatusOr<KindedSet> Reach(
      const KindedSet& set,
      const std::function<void(PyObject*, std::vector<uintptr_t>*)>& reach);
  // Heapy's byid: the members alive now (partitioned by Id) and the lines
  // of the first `limit` of them: address, kind, size and the value or
  // name (object_text.h) or a container's len=. Where: as Heap(). Walks.
  absl::StatusOr<ByIdResult> ById(const KindedSet& set, size_t limit = 20);
  // The lines of members `first` to `end` - 1 of `set` (a byid's members),
  // "(no longer alive)" for those that died since. Where: as Heap(). Walks.
  absl::StatusOr<std::vector<std::string>> ByIdLines(const KindedSet& set,
                                                     size_t first, size_t end);

  // `set` partitioned by `c`. Classifiers of recorded data need no walk;
  // Module, Rcs, Via and Prod walk again and classify the members alive
  // now (same address and type as recorded): members that died drop out
  // of the result. FailedPrecondition for Prod when the target's
  // tracemalloc is not tracing. Where: as Heap().
  absl::StatusOr<KindedSet> Classify(const KindedSet& set, const Classifier& c);
  // The heap as rows by kind, for hosts that ask without Python: Heap(ref)
  // (since the reference point `ref`, when given) partitioned by `c` (Clodo by
  // default; Module, Rcs, Via and Prod walk a second time), as a Stat. With
  // `max_rows` > 0 only the largest rows are kept, the others folded into
  // one "<Other>" row; totals cover every object. Errors: as Heap() and
  // Classify(). Where: as Heap().
  absl::StatusOr<Stat> Summary(const Classifier& c = Classifier(),
                               size_t max_rows = 0,
                               const ReferencePoint* ref = nullptr);
  // The kinds of the live members of `set` under each part of `c`, from one
  // walk. Where: as Heap().
  absl::StatusOr<LiveKinds> ClassifyParts(const KindedSet& set,
                                          const Classifier& c);
  // Classify() inside a question that already walked: `set`'s members are
  // nodes of `graph` (found alive by this question's walk), `reverse` its
  // reverse index or null (Rcs, refdby and Via then read the referrers
  // from the graph's forward edges, in node order). No walk.
  // Where: as Heap(), inside the HeapEngine::Question of `graph`'s walk.
  absl::StatusOr<KindedSet> ClassifyWithin(const heap::HeapGraph& graph,
                                           const heap::ReverseIndex* reverse,
                                           const KindedSet& set,
                                           const Classifier& c);

  const TypeNamer& namer() const { return namer_; }
  // Whether the session's last walk that named types saw one named `name`
  // (the types of the objects Heap() found, or what RememberTypeNames was
  // given). No walk: a name seen may have no object now, and a name not
  // seen may still be a type's. Where: the annex thread.
  bool SawTypeName(const std::string& name) const {
    return seen_type_names_.contains(name);
  }
  // Replaces the names SawTypeName knows. Where: the annex thread.
  void RememberTypeNames(absl::flat_hash_set<std::string> names) {
    seen_type_names_ = std::move(names);
  }
  heap::HeapEngine& engine() { return *engine_; }

  // The transient memory of one question (docs/hp.md, "Memory budget"):
  // its walk's graph and what the question builds from it.
  enum class Work {
    kWalk,        // the graph alone
    kDescribe,    // + kinds of every node (heap(), heapu())
    kPaths,       // + shortest-path search
    kReferrers,   // + reverse index, referrer kinds and edge names
    kDominators,  // + dominator tree (retained sizes, dominos)
  };
  // About how many bytes a question of `work` over `nodes` objects and
  // `edges` references needs (estimated from the engine's structures).
  static size_t QuestionBytes(size_t nodes, size_t edges, Work work);
  // Refuses a question asked for an hp (a console client's, not the host's
  // own calls) whose estimate would pass what that hp's memory budget has left:
  // ResourceExhausted (MemoryError in hp) saying what it needed. With
  // `graph` null it is asked before the walk and estimated from the last
  // walk's counts (none before the first walk; `edges`: the coming walk
  // records references); with `graph`, after the walk, from its counts,
  // which it remembers. Where: annex thread.
  absl::Status CheckQuestionMemory(const heap::HeapGraph* graph, Work work,
                                   bool edges = true);
  // The walk's nodes without edges, once the memory for a walk is there.
  // Where: annex thread, GIL held, inside a HeapEngine::Question.
  heap::SharedGraph NodesOnlyGraph();

  // How long each question asked from now on may hold the target
  // (heap/question_stop.h; InfiniteDuration: no limit): past it, the
  // question stops with DeadlineExceeded naming `name` (how to change the
  // limit; a string literal). A question also stops, Cancelled, when the
  // annex work item that asks it is interrupted (a console client's Ctrl-C
  // or disconnect, AnnexRuntime::Interrupt). Where: annex thread, outside
  // a question.
  void set_pause_limit(absl::Duration limit, const char* name);
  absl::Duration pause_limit() const {
    return engine_->question_limits().pause_limit;
  }
  // The limit hosts set (Options::question_pause_limit): the one of
  // questions whose asker set none.
  absl::Duration default_pause_limit() const { return default_pause_limit_; }

  // Kinds and sizes of `sorted` (ascending addresses), which must be alive
  // (found by a walk of the current HeapEngine::Question); `sizes` parallel
  // to it, or null to compute them; Clodo kinds with the dict owners found
  // among `owner_scan` (when given); each member's watch key offset into
  // `*key_offsets` (when given: for Keep). `while_packing`, when given,
  // runs on the caller once the kinds and key offsets are known, while a
  // helper packs the set (ClassifyObjects). Where: as Heap(), inside a
  // Question.
  KindedSet Describe(const std::vector<uintptr_t>& sorted,
                     const std::vector<uint64_t>* sizes,
                     const std::vector<uintptr_t>* owner_scan = nullptr,
                     std::vector<uint8_t>* key_offsets = nullptr,
                     const std::function<void()>& while_packing = nullptr);

 private:
  HeapView(std::unique_ptr<heap::HeapEngine> engine, TypeNamer namer,
           python::ThreadStates ts, absl::Duration default_pause_limit)
      : engine_(std::move(engine)),
        namer_(std::move(namer)),
        ts_(ts),
        default_pause_limit_(default_pause_limit) {}

  std::unique_ptr<heap::HeapEngine> engine_;
  TypeNamer namer_;
  // FailedPrecondition for Prod (also as a refdby base) while the
  // target's tracemalloc is off.
  static absl::Status CanLabel(const Classifier& c);
  // ClassifyParts over a graph already walked (see ClassifyWithin);
  // `force_in_and`: render every part as inside a combination (a refdby
  // base inside one); `unpacked`: `set`'s addresses unpacked, when the
  // caller has them (saves unpacking them again).
  absl::StatusOr<LiveKinds> LabelParts(
      const heap::HeapGraph& graph, const heap::ReverseIndex* reverse,
      const KindedSet& set, const Classifier& c, bool force_in_and = false,
      const std::vector<uintptr_t>* unpacked = nullptr);
  // The kind of every node of `graph` under `base` (Rcs and X.refdby:
  // the referrers' kinds), rendered as a refdby label's elements
  // (`in_and`: inside a combination); `reverse`: the graph's reverse
  // index or null, as LabelParts'. A plain vector: read once per edge,
  // and made once per question (Clodo, byrcs' base, unpacked: no set's
  // columns are built for it). Where: as LabelParts.
  absl::Status NodeKinds(const heap::HeapGraph& graph,
                         const heap::ReverseIndex* reverse,
                         const Classifier& base, bool in_and,
                         std::vector<uint32_t>* kinds,
                         std::shared_ptr<std::vector<std::string>>* names);
  // Attaches an identity to `set`, whose members are alive (found by the
  // current question's walk); `sorted`, when given, holds the same
  // addresses unpacked (saves unpacking them for the watch), and
  // `key_offsets` their watch key offsets (Describe's; empty: read from
  // the objects). Where: as Heap(), inside a Question.
  absl::Status Keep(KindedSet& set,
                    const std::vector<uintptr_t>* sorted = nullptr,
                    std::vector<uint8_t> key_offsets = {});

  python::ThreadStates ts_;
  absl::Duration default_pause_limit_;
  std::shared_ptr<const ReferencePoint> latest_ref_;
  MemoryBudget* budget_ = nullptr;  // the session's (outlives this view)
  // The last walk's objects and references per object (for estimates
  // before a walk; 2 until a walk recorded references).
  size_t last_nodes_ = 0;
  double last_edges_per_node_ = 2.0;
  absl::flat_hash_set<std::string> seen_type_names_;
};

}  // namespace annex::glue
