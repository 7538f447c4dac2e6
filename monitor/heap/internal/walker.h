// The iterative traversal shared by every heap query: an explicit stack, an
// address bitmap as the visited set, tp_traverse as gc.get_referents uses
// it, the references tp_traverse leaves out (TypeInfo::extras), live-frame
// locals, and optional edge recording for graphs.
#pragma once

#include <Python.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "monitor/heap/buffer_pool.h"
#include "monitor/heap/extension_registry.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/internal/address_bitmap.h"
#include "monitor/heap/internal/type_info.h"
#include "monitor/heap/lanes.h"
#include "monitor/heap/question_stop.h"
#include "monitor/heap/sizing.h"

namespace annex::heap::internal {

// Where: GIL held continuously from the first AddRoot to the last use of
// the results, the target current.
class Walker {
 public:
  // What the walk keeps of each object for FillGraph.
  enum class Record {
    kNothing,  // the visited set and totals only
    kSizes,    // each object's size: a graph of nodes without edges
    kEdges,    // sizes and referents: the whole graph
  };
  Walker(const ExtensionRegistry* registry, Record record);
  // Gives the records back to the pool (set_pool).
  ~Walker();
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  // Where the records (Reserve) and FillGraph's arrays come from; the
  // records go back at the end of the walker, the graph's with the graph.
  // Call before Reserve. Without one, plain vectors.
  void set_pool(std::shared_ptr<BufferPool> pool) { pool_ = std::move(pool); }

  void AddRoot(PyObject* obj);
  // Marks `addr` as visited without walking it: hidden objects are never
  // traversed. Call before AddRoot; Unmark after Run() removes them from the
  // results (and FillGraph drops edges to them).
  void MarkVisited(uintptr_t addr) { visited_.TestAndSet(addr); }
  void Unmark(uintptr_t addr) { visited_.Clear(addr); }
  // Objects set in `stop` are neither reported nor traversed.
  void set_stop(const AddressBitmap* stop) { stop_ = stop; }
  // Polled for each object: once it says stop, Run() returns with the
  // walk unfinished (the caller must not use the results).
  void set_question_stop(QuestionStop* stop) { question_stop_ = stop; }
  // The threads FillGraph may use (lanes.h); the caller's alone unless
  // set.
  void set_lanes(Lanes lanes) { lanes_ = lanes; }
  // How objects are sized (TypeInfoCache::Size); kExact unless set.
  void set_sizing(Sizing sizing) { sizing_ = sizing; }
  // Makes room for about `objects` objects and `edges` references in the
  // records (Record::kSizes / kEdges), backed by huge pages where the
  // kernel offers them (python/huge_pages.h), or kept from an earlier
  // question by the pool (set_pool): the engine passes what its last walk
  // recorded, so the records neither grow by doubling (copying and
  // faulting in twice their size) nor fault 4 KiB at a time.
  void Reserve(size_t objects, size_t edges);
  // Traverses everything reachable from the roots added so far.
  void Run();

  const AddressBitmap& visited() const { return visited_; }
  uint64_t count() const { return count_; }
  // References recorded (Record::kEdges), hidden ones included.
  size_t edge_count() const { return edges_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }
  // Of total_bytes(), the attribute values blocks (Sizing::kExact).
  uint64_t inline_values_bytes() const { return inline_values_bytes_; }
  // Times a record ran out of room (Reserve) and moved (Grow).
  uint32_t record_growths() const { return record_growths_; }
  TypeInfoCache& types() { return types_; }

  // With Record::kSizes or kEdges: builds the graph's nodes and sizes,
  // and with kEdges its CSR edges (roots not set; with kSizes every node
  // has no referents). Consumes the visited set's rank index (builds it)
  // and the recorded edges (rewritten as node ids): call it once.
  void FillGraph(HeapGraph* graph);

 private:
  static int VisitPush(PyObject* obj, void* arg);
  // Appends `x` to a record. A full record moves to twice its room,
  // backed by huge pages (ReserveHuge): a walk that could not Reserve
  // (the engine's first) would otherwise double through fresh 4 KiB
  // pages, faulting in each copy.
  template <typename T>
  void Append(std::vector<T>& v, T x) {
    if (__builtin_expect(v.size() == v.capacity(), 0)) Grow(v);
    v.push_back(x);
  }
  template <typename T>
  void Grow(std::vector<T>& v);

  TypeInfoCache types_;
  AddressBitmap visited_;
  std::vector<PyObject*> stack_;
  uint64_t count_ = 0;
  uint64_t total_bytes_ = 0;
  uint64_t inline_values_bytes_ = 0;
  uint32_t record_growths_ = 0;
  Sizing sizing_ = Sizing::kExact;
  Lanes lanes_;
  // Size and edge recording, in pop order.
  bool record_sizes_;
  bool record_edges_;
  const AddressBitmap* stop_ = nullptr;
  QuestionStop* question_stop_ = nullptr;
  std::shared_ptr<BufferPool> pool_;
  std::vector<uintptr_t> order_;
  std::vector<uint64_t> order_sizes_;
  std::vector<uint64_t> order_edge_begin_;
  std::vector<uintptr_t> edges_;
};

}  // namespace annex::heap::internal
