// The heap engine: walks the target's heap from its roots, with the world
// stopped (the GIL held from first root to last edge), and returns object
// sets, sizes and graph snapshots that never include the annex itself.
//
//   // On the annex thread, inside AnnexRuntime::Run (annex current):
//   HeapEngine engine(ts);
//   absl::StatusOr<HeapResult> heap = engine.Heap();
//   heap->objects.size(); heap->total_bytes; heap->pause_ns;
//   engine.SetRef();  ...  engine.SinceRef();   // what appeared since
//   engine.Unreachable();                        // heapu: tracked, unreachable
//
// heap()  = everything reachable (by tp_traverse, as gc.get_referents sees
//           it) from the roots of roots.h: sys.modules, sys, builtins, the
//           frames of every target thread.
// heapu() = the objects in the target's gc lists minus heap().
//
// Every method swaps to ts.target_ts for its duration (a no-op when the
// target is already current, e.g. a single-interpreter unit test).
//
// A swap is a yield point on 3.12 and later: PyThreadState_Swap releases and
// re-takes the GIL there (and, when a target thread has asked for the GIL,
// waits until it ran). Addresses found by one method are therefore valid in
// the next only when both run inside one HeapEngine::Question, which keeps
// the target current, and the GIL held, for a whole question:
//
//   HeapEngine::Question q(engine);
//   if (!q.status().ok()) return q.status();
//   HeapGraph g = *engine.Graph();      // walk ...
//   ReadObjects(g.addresses);           // ... and read, in one GIL hold
//   Nothing
// is left behind in the target: running frames are read in place (roots.h),
// and the only objects touched into existence are short-lived ints returned
// by C-level __sizeof__ methods, freed before the walk ends.
//
// Results hold addresses only (rule 10, see object_set.h). Not thread-safe:
// one engine per thread that walks.
#pragma once

#include <Python.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "monitor/heap/buffer_pool.h"
#include "monitor/heap/extension_registry.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/held_object_set.h"
#include "monitor/heap/lanes.h"
#include "monitor/heap/object_set.h"
#include "monitor/heap/question_stop.h"
#include "monitor/heap/sizing.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/guards.h"

namespace annex::heap {

namespace internal {
class Walker;
}  // namespace internal

struct HeapResult {
  ObjectSet objects;             // reachable objects
  uint64_t total_bytes = 0;      // sum of their sizes (HeapEngine::SizeOf)
  int64_t walk_ns = 0;           // roots + traversal
  int64_t pause_ns = 0;          // all the time the call held the GIL
  size_t visited_set_bytes = 0;  // transient bitmap memory of the walk
  // Of total_bytes, the attribute values blocks sys.getsizeof leaves out
  // (0 with Sizing::kGetsizeof).
  uint64_t inline_values_bytes = 0;
  // Times a record of the walk (a graph's) ran out of the room reserved
  // for it up front and moved to twice its room (EstimateFirstWalk).
  uint32_t record_growths = 0;
};

// Which objects a graph holds (HeapEngine::Graph).
struct GraphOptions {
  enum class Scope {
    // What heap() holds: everything reachable from the roots.
    kReachable,
    // Every live object the engine can find: the reachable ones, heapu()'s
    // members (gc-tracked, unreachable) and what those hold. Paths still
    // start at the named roots only, so heapu members have none; referrers
    // and referents of heapu members are their real ones among live
    // objects. Costs one pass over the gc lists and a walk of the
    // unreachable part on top of kReachable.
    kLive,
    // kLive when one of `*wanted` is not reachable from the roots, else
    // kReachable (then it costs one bitmap test per wanted address).
    kLiveIfNeeded,
  };
  Scope scope = Scope::kReachable;
  const std::vector<uintptr_t>* wanted = nullptr;  // for kLiveIfNeeded
  // False: nodes and sizes only, every node without referents (out_begin
  // all zero): for questions that need no edges, such as heap(), whose
  // walk then records no edges (about half of its time at 1M objects).
  bool edges = true;

  // The reachable nodes and their sizes, no edges.
  static GraphOptions NodesOnly() {
    GraphOptions options;
    options.edges = false;
    return options;
  }
};

// heapu() in two parts, by the rule of CPython's cycle collector (a full
// collection): `garbage` is what a gc.collect() would find unreachable
// (cyclic garbage: every reference to it comes from tp_traverse of other
// unreachable gc objects), `held` what it would keep (objects whose
// reference count exceeds what other unreachable gc objects account for,
// i.e. held by C code, a value stack or a non-gc object, and everything
// they reach through tp_traverse). garbage | held == heapu(), disjoint.
struct UnreachableParts {
  ObjectSet garbage;
  ObjectSet held;
};

class HeapEngine {
 public:
  // `ts.target_ts`: a thread state of the target owned by the calling thread
  // (the annex thread's, or the caller's own in a single interpreter).
  // When `ts.annex_ts` is set, `ts.target_ts` is excluded from the roots;
  // `excluded` lists further thread states of the annex's own threads.
  // Where: any thread; stores pointers only.
  explicit HeapEngine(const python::ThreadStates& ts,
                      std::vector<PyThreadState*> excluded = {});

  // Frees the kept buffers (reporting 0 kept) and stops reporting: graphs
  // that outlive the engine give their arrays back to the pool they share,
  // which frees them when the last one ends.
  ~HeapEngine();

  HeapEngine(const HeapEngine&) = delete;
  HeapEngine& operator=(const HeapEngine&) = delete;

  // How long a question waits for a running gc collection of the target.
  static constexpr absl::Duration kGcWait = absl::Seconds(5);

  // One question to the heap: the target current and its pending exception
  // set aside from construction to destruction, so that engine calls inside
  // swap no more and the GIL is never released in between (see the top of
  // this file). The outermost question first waits, with the GIL released,
  // while a gc collection runs in the target (its finalizers can hand the
  // GIL over mid-collection, when the gc lists are not whole), at most
  // kGcWait; then status() is Unavailable. When status() is not OK (no GIL,
  // wrong thread state, Python finalizing, collection still running) engine
  // calls fail as usual.
  // Where: annex thread (or the caller's own thread in one interpreter),
  // GIL held; nests.
  class Question {
   public:
    explicit Question(const HeapEngine& engine);
    ~Question();
    Question(const Question&) = delete;
    Question& operator=(const Question&) = delete;
    const absl::Status& status() const { return status_; }

   private:
    absl::Status WaitForGcIdle();

    const HeapEngine& engine_;
    bool counted_ = false;
    absl::Status status_;
    std::optional<python::ScopedTargetSwap> swap_;
    std::optional<python::ScopedErrorPreserver> preserve_;
  };

  // How every later walk and SizeOf size objects, in results, totals and
  // graphs alike (sizing.h). Sizing::kExact by default: sys.getsizeof plus
  // the attribute values block it leaves out (3.11/3.12: the values block
  // allocated apart while no dict object exists; 3.13: the inline values
  // area allocated with the object; python::InlineValuesBytes).
  // Sizing::kGetsizeof: exactly sys.getsizeof. Where: any thread.
  void set_sizing(Sizing sizing) { sizing_ = sizing; }
  Sizing sizing() const { return sizing_; }

  // Sets the engine's sizing for its own lifetime and puts the previous
  // one back after. Where: as set_sizing.
  class ScopedSizing {
   public:
    ScopedSizing(HeapEngine& engine, Sizing sizing)
        : engine_(engine), saved_(engine.sizing()) {
      engine.set_sizing(sizing);
    }
    ~ScopedSizing() { engine_.set_sizing(saved_); }
    ScopedSizing(const ScopedSizing&) = delete;
    ScopedSizing& operator=(const ScopedSizing&) = delete;

   private:
    HeapEngine& engine_;
    const Sizing saved_;
  };

  // How many threads a question's long passes may use, its own included
  // (lanes.h): the walk's graph building, classification and packing of
  // the results. Lanes::ForMachine() by default (two where the process may
  // run on two CPUs); Lanes(1) keeps every question on its own thread.
  // Where: the engine's thread, outside a question.
  void set_lanes(Lanes lanes) { lanes_ = lanes; }
  Lanes lanes() const { return lanes_; }

  // The pause limit and cancellation of every later question (the
  // outermost Question starts its clock once any gc wait is over). A
  // question past its limit, or cancelled, fails with question_stop()'s
  // status: DeadlineExceeded or Cancelled. None by default. Where: the
  // engine's thread, outside a question.
  void set_question_limits(const QuestionStop::Limits& limits) {
    limits_ = limits;
  }
  const QuestionStop::Limits& question_limits() const { return limits_; }
  // The open question's stop, for loops over its results (paths,
  // dominators, classification) to poll. Where: inside a Question.
  QuestionStop& question_stop() const { return stop_; }

  // The big vectors of questions kept for the next one (buffer_pool.h):
  // the walk's records, the graphs' arrays and what is built from a graph
  // (reverse index, dominator tree) come from here and go back when they
  // end, so a question at a million objects faults in no fresh memory when
  // an earlier one was as large. Bounded by its limit (set_limit, 0 keeps
  // nothing); Trim() frees what it keeps. Where: any thread.
  BufferPool& buffers() { return *buffers_; }
  // The same pool, for what must hold it beyond the engine's life.
  const std::shared_ptr<BufferPool>& shared_buffers() const { return buffers_; }

  // Size/traverse functions of extension types, used by every walk.
  ExtensionRegistry& extensions() { return extensions_; }

  // Before the engine's first walk that records objects (a graph's): its
  // records are reserved for about what the allocator has in use
  // (python::AllocatedBlocks), at most what `max_objects` returns (called
  // only then), and for two references per object, so that they do not
  // grow by doubling (copying, and faulting in twice their final size:
  // the first hp.heap() of a session paid that). Later walks reserve what
  // the last one recorded; first reservations are FirstWalkRoom's.
  // Does nothing once a walk has recorded objects or an estimate was
  // taken, or where the count cannot be read (3.12+ with the target
  // current). Where: GIL held, outside a question.
  void EstimateFirstWalk(absl::FunctionRef<size_t()> max_objects);

  // The room a first walk reserves in a record (8-byte elements) for an
  // estimate of `n` of them: `n` rounded up to a power of two, the room
  // doubling would have reached (pages never written cost nothing), but
  // within 30 MiB when `n` fits there. glibc raises its mmap threshold
  // to the size of a freed mapping only when that is under 32 MiB, after
  // which the later questions' vectors below it come from malloc's free
  // memory and its arenas are trimmed less, instead of being faulted in
  // fresh; a power of two of 32 MiB (2^22 references at 1M objects)
  // mapped more than that and raised nothing (docs/heap-engine.md).
  // At least `n`. Where: any thread (arithmetic).
  static size_t FirstWalkRoom(size_t n);

  // The reachable set and its total size. Where: GIL held by the calling
  // thread with ts.target_ts or ts.annex_ts current. FailedPrecondition
  // otherwise or when the target is finalizing.
  absl::StatusOr<HeapResult> Heap();

  // The reachable set with a strong reference to each object, taken in the
  // same GIL stretch as the walk, so its addresses stay valid until
  // Release(). Where: as Heap().
  absl::StatusOr<HeldObjectSet> HeapHeld(HeapResult* stats = nullptr);
  // Drops the references of `held` with the target current (rule 10).
  // Where: as Heap(); may run target destructors and __del__.
  absl::Status Release(HeldObjectSet& held);

  // The reachable set as a graph (HeapGraph, graph.h) built in one walk;
  // `stats` (optional) receives the timings and totals. Where: as Heap().
  absl::StatusOr<HeapGraph> Graph(HeapResult* stats = nullptr);
  // The same, holding what `options` asks for: with kLive (or kLiveIfNeeded
  // when needed) also the unreachable live objects (graph.reachable_only is
  // false then). Where: as Heap().
  absl::StatusOr<HeapGraph> Graph(const GraphOptions& options,
                                  HeapResult* stats = nullptr);

  // The graph `options` asks for, shared: the graph kept from an earlier
  // walk when it holds what `options` asks for and the target cannot have
  // changed since (python::TargetMark equal; the same sizing, hidden
  // objects and extension functions), else a new walk's. The graph made is
  // kept for the next question while it fits in the pool's limit
  // (buffers()); it counts there as held memory, and the pool's Trim()
  // drops it. A kept graph with edges serves NodesOnly() too, a kLive one
  // every scope but kReachable, a kReachable one kLiveIfNeeded when every
  // wanted address is in it. `stats` gets the walk's figures; on reuse
  // walk_ns is 0 and the totals are the kept walk's. Nothing is kept when
  // no mark can be taken (a single interpreter: ThreadStates without
  // target_runs). Where: as Heap().
  SharedGraph Shared(const GraphOptions& options, HeapResult* stats = nullptr);
  // Forgets the kept graph. Where: any thread.
  void DropKeptGraph();
  // How Shared() answered so far. Where: the engine's thread.
  struct SharedStats {
    uint64_t walks = 0;   // made by a new walk
    uint64_t reused = 0;  // the kept graph
  };
  const SharedStats& shared_stats() const { return shared_stats_; }

  // heapu(): objects tracked by the target's gc but not reachable from the
  // roots. Where: as Heap(). Unavailable when a gc collection of the target
  // runs past the question's wait (Question) or starts inside a question.
  absl::StatusOr<ObjectSet> Unreachable();
  // heapu() split into cyclic garbage and objects held by references the
  // gc cannot see (UnreachableParts above), without collecting: reference
  // counts are read and tp_traverse is called on heapu's members only.
  // Where: as Heap().
  absl::StatusOr<UnreachableParts> UnreachableSplit();

  // The reachable set, watched (python/death_watch.h): the result tells
  // later which of its members are still the same objects, whatever the
  // allocator did with their addresses. Where: as Heap().
  absl::StatusOr<std::shared_ptr<python::WatchedObjects>> HeapKept();
  // The members of `kept` that are still the objects it watched (sorted).
  // Where: GIL held.
  static ObjectSet LiveMembers(const python::WatchedObjects& kept);

  // Remembers the current reachable set, by identity, as the engine's
  // reference point; ClearRef() forgets it. Where: as Heap().
  absl::Status SetRef();
  void ClearRef() { ref_.reset(); }
  // Objects created after the reference point and alive now: the current
  // reachable set minus the reference members that are still the same
  // objects (everything when no reference point is set). A new object at
  // the address of a member that died is new. Where: as Heap().
  absl::StatusOr<ObjectSet> SinceRef();
  // The reference point (null when none). Where: any thread.
  const std::shared_ptr<python::WatchedObjects>& ref() const { return ref_; }

  // Hides `objects` from every later result: they are neither reported nor
  // walked through, so what only they reach disappears too (from heap(),
  // Graph() and, for hidden objects found in the gc lists, from heapu()).
  // Meant for Annex's own footprint in the target. Identities only (rule
  // 10): a hidden object is dereferenced only after it was found in the gc
  // lists by the same call, and a new object that reuses a hidden address
  // is hidden too, so hide only objects that live as long as the engine.
  // Where: any thread (plain data).
  void Hide(const ObjectSet& objects) {
    hidden_ = hidden_ | objects;
    DropKeptGraph();
  }
  const ObjectSet& hidden() const { return hidden_; }

  // The size a walk records for `obj`, by the engine's sizing (above):
  // sys.getsizeof(obj) as the target computes it, without running Python
  // code, plus with Sizing::kExact its attribute values block. Where: as
  // Heap(); `obj` must be alive.
  absl::StatusOr<uint64_t> SizeOf(PyObject* obj);
  // SizeOf of each of `objects` (all alive), looking each type up once.
  // Where: as Heap().
  absl::StatusOr<std::vector<uint64_t>> SizesOf(
      const std::vector<uintptr_t>& objects);

  // The roots' names (with their root edge, e.g. "thread 7 frame 0" +
  // ".f_globals") and addresses, for callers that print paths.
  // Where: as Heap().
  absl::StatusOr<std::vector<std::pair<std::string, uintptr_t>>> RootNames();

 private:
  absl::Status CheckCurrent() const;
  absl::StatusOr<HeapResult> Walk(HeapGraph* graph,
                                  const GraphOptions* options = nullptr);
  // After `walker` ran from the roots (hidden objects marked visited, and
  // marked again on return): the gc-tracked objects it did not visit,
  // sorted, minus the hidden ones and what only they reach (those not
  // hidden themselves returned in `hidden_only`, to keep out of walks).
  absl::Status UnreachableCandidates(internal::Walker& walker,
                                     std::vector<uintptr_t>* candidates,
                                     std::vector<uintptr_t>* hidden_only);

  python::ThreadStates ts_;
  mutable int question_depth_ = 0;  // Questions open on this engine
  QuestionStop::Limits limits_;
  mutable QuestionStop stop_;  // of the open outermost question
  absl::flat_hash_set<PyThreadState*> excluded_;
  ExtensionRegistry extensions_;
  std::shared_ptr<python::WatchedObjects> ref_;
  ObjectSet hidden_;
  Sizing sizing_ = Sizing::kExact;
  Lanes lanes_ = Lanes::ForMachine();
  // What the last walk that recorded objects found (objects, references):
  // the next one reserves that much up front (Walker::Reserve), plus an
  // eighth for growth; with no references recorded yet, two per object.
  // Annex thread, GIL held.
  size_t last_recorded_objects_ = 0;
  size_t last_recorded_edges_ = 0;
  // EstimateFirstWalk's, for a first recording walk (0: none).
  size_t first_walk_objects_ = 0;
  // Shared with the graphs made from it, which give their arrays back
  // when they end, whichever ends first.
  std::shared_ptr<BufferPool> buffers_ = std::make_shared<BufferPool>();

  // The graph kept by Shared() and what it was made with. Shared with the
  // pool's release callback (BufferPool::SetHeld), which may run on any
  // thread: hence the lock.
  struct KeptGraph {
    absl::Mutex mu;
    std::shared_ptr<const HeapGraph> graph ABSL_GUARDED_BY(mu);
    python::TargetMark mark ABSL_GUARDED_BY(mu);
    Sizing sizing ABSL_GUARDED_BY(mu) = Sizing::kExact;
    uint64_t extensions ABSL_GUARDED_BY(mu) = 0;
    bool edges ABSL_GUARDED_BY(mu) = false;
    uint64_t total_bytes ABSL_GUARDED_BY(mu) = 0;
    uint64_t inline_values_bytes ABSL_GUARDED_BY(mu) = 0;
  };
  const std::shared_ptr<KeptGraph> kept_ = std::make_shared<KeptGraph>();
  SharedStats shared_stats_;
};

}  // namespace annex::heap
