// The death watch: per-version hooks that count deaths of watched blocks.
#include "monitor/python/death_watch.h"

#include <errno.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "monitor/python/huge_pages.h"
#include "monitor/python/version.h"

namespace annex::python {
namespace {

// A watched block: how many watches hold it, and how many deaths were
// counted there since it was first watched.
struct Entry {
  uint32_t watchers = 0;
  uint32_t deaths = 0;
};

// All fields but `pending` are read and written with the GIL held (the
// hooks run with the GIL held: PYMEM_DOMAIN_OBJ requires it, tp_dealloc and
// the ref tracer run under it).
//
// The watched keys are one sorted table, not a hash map: a watch of a
// million members (every hp.heap()) joins the table in one sequential merge
// and leaves it in another, where a hash map took two million random
// accesses (most of hp.heap()'s time). The hooks do not look keys up: a
// hook that passes the filter only logs the key (a store and an add), and
// the logged keys are counted into `entries` in sorted batches: before any
// count is read or the table changes, and by the hook itself once
// kCountBatch keys wait.
struct Registry {
  std::vector<uintptr_t> keys;  // watched keys, ascending
  std::vector<Entry> entries;   // entries[i] belongs to keys[i]
  size_t finger = 0;            // where the last lookup in `keys` ended
  // Quick filter of watched keys: one bit per hash of the key; the hot path
  // is a shift, a mask and a bit test, and only hits are logged.
  std::vector<uint64_t> filter;
  int filter_shift = 64;  // 64 - log2(bits)
  // Keys released since the last rebuild whose bits may still be set.
  size_t stale_filter_bits = 0;
  bool installed = false;
  bool armed = false;  // hooks count deaths (false: pass through)
  bool intact = true;
  // Every key that passed the filter (a watched block's death, or a key
  // that shares a filter bit with one), hit h (0-based) at h & mask of
  // `hit_log`; allocated while hooks are installed (the hooks never
  // allocate). Holds the hits after `log_from` only. Hits before `counted`
  // are counted into `entries`.
  std::vector<uintptr_t> hit_log;
  uint64_t hits = 0;
  uint64_t counted = 0;
  uint64_t log_from = 0;
  std::vector<uintptr_t> scratch;  // kCountBatch keys, for CountHits

  absl::Mutex pending_mu;
  // The keys of each released watch, ascending.
  std::vector<std::vector<uintptr_t>> pending ABSL_GUARDED_BY(pending_mu);
};

// How many members ahead Watch prefetches their objects (times two).
constexpr size_t kPrefetchAhead = 16;

// Hits remembered for DeathsSince (a power of two: 8 MiB).
constexpr size_t kHitLogSize = size_t{1} << 20;
// Hits counted at once: the most a hook counts in one go (sorting 16 K keys
// and finding them in the table: about a millisecond), and at most
// kHitLogSize.
constexpr size_t kCountBatch = size_t{1} << 14;

// Leaked on purpose: hooks may run during interpreter finalization, after
// static destructors would have destroyed a static registry.
Registry* g_registry = nullptr;
Registry& R() {
  if (g_registry == nullptr) g_registry = new Registry();  // GIL held
  return *g_registry;
}

// The bit of a key: its 16-byte granule modulo the filter size. Neighbour
// blocks get neighbour bits, so an allocation-heavy loop (which churns
// blocks of a few pools) touches few cache lines of the filter.
inline uint64_t FilterHash(uintptr_t key, int shift) {
  return (static_cast<uint64_t>(key) >> 4) & (~uint64_t{0} >> shift);
}

// The hot path's view of the filter: null while disarmed (or nothing is
// watched), so a hook that finds nothing to do costs one load and a test.
// Written only with the GIL held, as the hooks read it.
const uint64_t* g_filter = nullptr;
uint64_t g_filter_mask = 0;

void Publish(const Registry& r) {
  if (r.armed && !r.filter.empty()) {
    g_filter_mask = ~uint64_t{0} >> r.filter_shift;
    g_filter = r.filter.data();
  } else {
    g_filter = nullptr;
  }
}

void SetFilterBit(Registry& r, uintptr_t key) {
  const uint64_t h = FilterHash(key, r.filter_shift);
  r.filter[h >> 6] |= uint64_t{1} << (h & 63);
}

// Rebuilds the filter from the watched keys: at least 16 bits per key, at
// least 2^20. Where: GIL held.
void RebuildFilter(Registry& r) {
  g_filter = nullptr;
  r.stale_filter_bits = 0;
  if (r.keys.empty()) {
    r.filter.clear();
    r.filter.shrink_to_fit();
    Publish(r);
    return;
  }
  int bits = 20;
  while ((size_t{1} << bits) < r.keys.size() * 16) ++bits;
  r.filter.assign((size_t{1} << bits) / 64, 0);
  r.filter_shift = 64 - bits;
  for (uintptr_t key : r.keys) SetFilterBit(r, key);
  Publish(r);
}

// Whether the filter must be rebuilt for the keys now watched: too small
// for them (more than one key per 16 bits), or more bits left by released
// keys than keys watched (each costs the hooks a logged hit on a death in
// its granule). Otherwise new keys just set their bits (Watch), and
// released keys leave theirs: a question that watches a million objects
// again each time does not rebuild a 2 MiB filter each time.
bool FilterNeedsRebuild(const Registry& r) {
  if (r.keys.empty() || r.filter.empty()) return true;
  const size_t bits = r.filter.size() * 64;
  return r.keys.size() * 16 > bits || r.stale_filter_bits > r.keys.size();
}

// The index of the first watched key >= `key` (keys.size() if none),
// searched by galloping from where the last search ended: a run of
// ascending lookups (a sorted batch, a watch's members in order) costs
// O(log distance) each, a random one O(log n). Where: GIL held; also hook
// context (no allocation).
size_t LowerBound(Registry& r, uintptr_t key) {
  const std::vector<uintptr_t>& keys = r.keys;
  const size_t n = keys.size();
  size_t f = std::min(r.finger, n);
  size_t found;
  if (f < n && keys[f] < key) {
    // Forward: keys[lo] < key, and the answer is in (lo, hi].
    size_t lo = f, step = 1;
    while (lo + step < n && keys[lo + step] < key) {
      lo += step;
      step *= 2;
    }
    const size_t hi = std::min(lo + step, n);
    found = std::lower_bound(keys.begin() + lo + 1, keys.begin() + hi, key) -
            keys.begin();
  } else {
    // Backward: hi == n or keys[hi] >= key, and the answer is in [0, hi].
    size_t hi = f, step = 1;
    while (hi >= step && keys[hi - step] >= key) {
      hi -= step;
      step *= 2;
    }
    const size_t lo = hi >= step ? hi - step : 0;
    found = std::lower_bound(keys.begin() + lo, keys.begin() + hi, key) -
            keys.begin();
  }
  r.finger = found;
  return found;
}

// The entry of a watched key, or null. Where: as LowerBound.
Entry* Lookup(Registry& r, uintptr_t key) {
  const size_t i = LowerBound(r, key);
  return i < r.keys.size() && r.keys[i] == key ? &r.entries[i] : nullptr;
}

// Counts the logged hits into the entries of their keys (a key no longer,
// or never, watched is dropped). Must run before an entry's count is read
// and before keys join or leave the table: a hit logged before a key was
// watched must not count against it. Where: GIL held; also hook context
// (no allocation, no Python call: std::sort sorts in place).
void CountHits(Registry& r) {
  if (r.hit_log.empty()) {
    r.counted = r.hits;
    return;
  }
  const size_t mask = r.hit_log.size() - 1;
  while (r.counted < r.hits) {
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(r.hits - r.counted, r.scratch.size()));
    for (size_t i = 0; i < n; ++i) {
      r.scratch[i] = r.hit_log[(r.counted + i) & mask];
    }
    r.counted += n;
    std::sort(r.scratch.begin(), r.scratch.begin() + n);
    r.finger = 0;
    for (size_t i = 0; i < n; ++i) {
      if (Entry* e = Lookup(r, r.scratch[i])) e->deaths++;
    }
  }
}

// A death (or a proof of one) at `key`, which passed the filter: logged,
// counted later. Where: GIL held, hook context: no allocation, no Python
// call.
void Hit(uintptr_t key) {
  Registry& r = *g_registry;
  if (r.hit_log.empty()) return;
  r.hit_log[r.hits & (r.hit_log.size() - 1)] = key;
  if (++r.hits - r.counted >= kCountBatch) CountHits(r);
}

inline void Died(uintptr_t key) {
  const uint64_t* filter = g_filter;
  if (filter == nullptr) return;
  const uint64_t h = (static_cast<uint64_t>(key) >> 4) & g_filter_mask;
  if ((filter[h >> 6] >> (h & 63)) & 1) Hit(key);
}

// The key of a live object: where its memory block starts on 3.11/3.12
// (the allocator sees blocks), the object itself on 3.13 (the tracer sees
// objects).
// One rule with WatchedObjects::KeyOffset: the type alone decides it.
inline uint8_t PreHeaderOf(PyObject* obj) {
#if PY_VERSION_HEX >= 0x030D0000
  (void)obj;
  return 0;
#else
  return static_cast<uint8_t>(SizeofTypePreHeader(Py_TYPE(obj)));
#endif
}

#if PY_VERSION_HEX >= 0x030D0000
// ---- 3.13: the reference tracer ----
PyRefTracer g_prev_tracer = nullptr;
void* g_prev_data = nullptr;

int Tracer(PyObject* obj, PyRefTracerEvent event, void* data) {
  // DESTROY: the object dies now. CREATE at a watched address: a new object
  // took the place, so the member there died (a death the tracer missed,
  // e.g. a specialized instruction's direct dealloc).
  if (obj != nullptr) Died(reinterpret_cast<uintptr_t>(obj));
  (void)data;
  if (g_prev_tracer != nullptr) return g_prev_tracer(obj, event, g_prev_data);
  return 0;
}

absl::Status InstallHooks() {
  void* data = nullptr;
  PyRefTracer current = PyRefTracer_GetTracer(&data);
  if (current != &Tracer) {
    g_prev_tracer = current;
    g_prev_data = data;
    if (PyRefTracer_SetTracer(&Tracer, nullptr) < 0) {
      PyErr_Clear();
      return absl::InternalError("PyRefTracer_SetTracer failed");
    }
  }
  return absl::OkStatus();
}

// Restores the tracer found at install, unless another replaced ours.
void UninstallHooks() {
  void* data = nullptr;
  if (PyRefTracer_GetTracer(&data) == &Tracer) {
    if (PyRefTracer_SetTracer(g_prev_tracer, g_prev_data) < 0) PyErr_Clear();
  }
  g_prev_tracer = nullptr;
  g_prev_data = nullptr;
}

bool HooksInPlace() {
  void* data = nullptr;
  return PyRefTracer_GetTracer(&data) == &Tracer;
}

#else
// ---- 3.11 and 3.12: the OBJ allocator and free-list types' tp_dealloc ----
PyMemAllocatorEx g_prev_alloc{};
bool g_alloc_hooked = false;  // ours is in the chain (maybe below another)

void* HookRealloc(void*, void* ptr, size_t size) {
  void* p = g_prev_alloc.realloc(g_prev_alloc.ctx, ptr, size);
  // The block moved: the old one is freed (the new one was free before).
  if (p != nullptr && p != ptr && ptr != nullptr) {
    Died(reinterpret_cast<uintptr_t>(ptr));
  }
  return p;
}

void HookFree(void*, void* ptr) {
  if (ptr != nullptr) Died(reinterpret_cast<uintptr_t>(ptr));
  g_prev_alloc.free(g_prev_alloc.ctx, ptr);
}

// The static types whose exact instances go on a free list instead of
// being freed (see the interpreter state's _Py_*_state in the internal
// headers of 3.11 and 3.12). Their tp_dealloc is wrapped while armed; a
// wrapper stays valid forever (a type readied meanwhile may have inherited
// it) and always calls the original.
constexpr int kWrapped = 8;
PyTypeObject* WrappedType(int i) {
  switch (i) {
    case 0:
      return &PyFloat_Type;
    case 1:
      return &PyTuple_Type;
    case 2:
      return &PyList_Type;
    case 3:
      return &PyDict_Type;
    case 4:
      return &PySlice_Type;
    case 5:
      return &PyContext_Type;
    case 6:
      return &_PyAsyncGenASend_Type;
    case 7:
      return &_PyAsyncGenWrappedValue_Type;
  }
  return nullptr;
}
destructor g_orig_dealloc[kWrapped] = {};

// Where the block of `obj` starts (as SizeofPreHeader, inline: this is on
// the dealloc path of every float, tuple, list and dict).
inline uintptr_t BlockOf(PyObject* obj) {
#if PY_VERSION_HEX >= 0x030C0000
  constexpr unsigned long kPreHeader =
      Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
#else
  constexpr unsigned long kPreHeader = Py_TPFLAGS_MANAGED_DICT;
#endif
  const unsigned long flags = Py_TYPE(obj)->tp_flags;
  // PyGC_Head is two words (_gc_next, _gc_prev) on 3.11 and 3.12.
  uintptr_t pre = (flags & Py_TPFLAGS_HAVE_GC) ? 2 * sizeof(uintptr_t) : 0;
  if (flags & kPreHeader) pre += 2 * sizeof(PyObject*);
  return reinterpret_cast<uintptr_t>(obj) - pre;
}

// tuple, list and dict (indexes 1 to 3) free a deep chain of exact
// instances through the trashcan: their tp_dealloc opens it only when
// Py_TYPE(op)->tp_dealloc is that very function (_PyTrash_cond), so that a
// subclass instance, already in subtype_dealloc's trashcan, does not nest a
// second one. Under our wrapper that test fails for every instance, and
// freeing a chain of a million nested lists recursed once per level on the
// C stack until it overflowed (SIGSEGV; CPython's test suite under annex
// hit it inside a gc collection). The wrapper opens the
// trashcan itself, under the same test with itself in place of the
// original, after untracking the object as the original does first (the
// trashcan links deferred objects through their gc header).
//
// Opening the trashcan for every tuple, list and dict cost an
// allocation-heavy loop about 5 % (bench/identity), most of the watch's
// price; so did any call or bookkeeping around the original (a wrapper
// that ends in a tail call after a few loads costs about 1 %). The
// trashcan only guards the C stack against deep chains, so the wrapper
// opens it only where the stack is nearly used up: within
// kTrashcanHeadroom of this thread's stack limit. Past that point the
// trashcan nests at most its unwind level (50 on 3.11 and 3.12) before
// it defers, and the deferred chain is freed from there, level by level,
// so the stack stays bounded as without the watch. A chain shorter than
// the stack allows is freed by plain recursion, as CPython frees objects
// of types without a trashcan.
constexpr bool UsesTrashcan(int i) { return i >= 1 && i <= 3; }
constexpr uintptr_t kTrashcanHeadroom = uintptr_t{512} * 1024;

// This thread's stack limit plus the headroom, 0 until its first wrapped
// dealloc (initial-exec TLS: one %fs-relative load, also in the dlopen'ed
// Python module, where glibc's reserved static TLS holds it).
__thread uintptr_t t_trashcan_below __attribute__((tls_model("initial-exec"))) =
    0;

// Finds this thread's stack limit. Where: any thread, once per thread,
// from a dealloc (not inside the allocator: pthread_getattr_np reads
// /proc/self/maps for the main thread, which allocates). When the limit cannot
// be found, the whole stack counts as deep (every dealloc takes the trashcan,
// the safe side).
__attribute__((noinline)) uintptr_t FindTrashcanLimit() {
  const int saved_errno = errno;  // a dealloc must not change errno
  uintptr_t limit = ~uintptr_t{0};
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* low = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &low, &size) == 0 && low != nullptr) {
      limit = reinterpret_cast<uintptr_t>(low) + kTrashcanHeadroom;
    }
    pthread_attr_destroy(&attr);
  }
  t_trashcan_below = limit;
  errno = saved_errno;
  return limit;
}

// Whether this dealloc runs near the end of the C stack. Where: GIL held,
// in the dealloc of a wrapped type.
inline bool DeepDealloc() {
  uintptr_t below = t_trashcan_below;
  if (__builtin_expect(below == 0, 0)) below = FindTrashcanLimit();
  return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) < below;
}

#if PY_VERSION_HEX >= 0x030C0000
// 3.12's dict_dealloc first tells the dict's watchers (PyDict_AddWatcher),
// which may resurrect the dict; the original untracks only after that. A
// watched dict is left to the original alone (no trashcan, as before the
// fix), so that a resurrected one stays tracked. The watcher bits are the
// low DICT_MAX_WATCHERS (8) bits of ma_version_tag (pycore_dict.h).
inline bool DictWatched(PyObject* obj) {
  _Py_COMP_DIAG_PUSH _Py_COMP_DIAG_IGNORE_DEPR_DECLS return (
      reinterpret_cast<PyDictObject*>(obj)->ma_version_tag & 0xff) != 0;
  _Py_COMP_DIAG_POP
}
#endif

template <int I>
void WrappedDealloc(PyObject* obj) {
  if constexpr (UsesTrashcan(I)) {
#if PY_VERSION_HEX >= 0x030C0000
    if (I == 3 && DictWatched(obj)) {
      Died(BlockOf(obj));
      g_orig_dealloc[I](obj);
      return;
    }
#endif
    if (!DeepDealloc()) {
      Died(BlockOf(obj));
      return g_orig_dealloc[I](obj);
    }
    PyObject_GC_UnTrack(obj);
    Py_TRASHCAN_BEGIN_CONDITION(obj,
                                Py_TYPE(obj)->tp_dealloc == &WrappedDealloc<I>)
        // Counted when it really goes: a deferred object comes back here from
        // the trashcan's chain (through its type's tp_dealloc).
        Died(BlockOf(obj));
    g_orig_dealloc[I](obj);
    Py_TRASHCAN_END
  } else {
    // The object is intact until its dealloc runs: its type gives the block.
    Died(BlockOf(obj));
    g_orig_dealloc[I](obj);
  }
}

template <int... I>
constexpr std::array<destructor, sizeof...(I)> MakeWrappers(
    std::integer_sequence<int, I...>) {
  return {&WrappedDealloc<I>...};
}
const std::array<destructor, kWrapped> kWrappers =
    MakeWrappers(std::make_integer_sequence<int, kWrapped>());

absl::Status InstallHooks() {
  if (g_alloc_hooked) {
    // Still in the chain? On top, or below tracemalloc's hooks while it
    // traces. tracemalloc.stop() restores the allocator it found, which
    // drops ours when ours was installed after tracemalloc started.
    PyMemAllocatorEx current;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &current);
    if (current.free != &HookFree && !TracemallocIsTracing()) {
      g_alloc_hooked = false;
    }
  }
  if (!g_alloc_hooked) {
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &g_prev_alloc);
    // malloc and calloc go straight to the previous allocator (with its
    // context, which our realloc and free ignore): a block they return at
    // a watched key was freed before, through HookFree, so checking it
    // again proved nothing, and skipping our frame halves the hooks' cost
    // to allocation-heavy code.
    PyMemAllocatorEx ours{g_prev_alloc.ctx, g_prev_alloc.malloc,
                          g_prev_alloc.calloc, &HookRealloc, &HookFree};
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &ours);
    g_alloc_hooked = true;
  }
  for (int i = 0; i < kWrapped; ++i) {
    PyTypeObject* t = WrappedType(i);
    if (t->tp_dealloc == kWrappers[i]) continue;
    g_orig_dealloc[i] = t->tp_dealloc;
    t->tp_dealloc = kWrappers[i];
  }
  return absl::OkStatus();
}

void UninstallHooks() {
  for (int i = 0; i < kWrapped; ++i) {
    PyTypeObject* t = WrappedType(i);
    if (t->tp_dealloc == kWrappers[i]) t->tp_dealloc = g_orig_dealloc[i];
  }
  if (g_alloc_hooked) {
    PyMemAllocatorEx current;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &current);
    // Only when ours is on top: a hook installed above ours (tracemalloc)
    // chains to ours and must keep working, so ours stays (disarmed).
    if (current.free == &HookFree) {
      PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &g_prev_alloc);
      g_alloc_hooked = false;
    }
  }
}

bool HooksInPlace() {
  for (int i = 0; i < kWrapped; ++i) {
    if (WrappedType(i)->tp_dealloc != kWrappers[i]) return false;
  }
  // Ours on top, or something above that tracemalloc put there (it chains
  // to what it found). A hook below ours that was removed by restoring an
  // older allocator over ours cannot be told from here.
  PyMemAllocatorEx current;
  PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &current);
  return g_alloc_hooked &&
         (current.free == &HookFree || TracemallocIsTracing());
}
#endif

void FlushLocked(Registry& r) {
  std::vector<std::vector<uintptr_t>> pending;
  {
    absl::MutexLock lock(&r.pending_mu);
    pending.swap(r.pending);
  }
  if (pending.empty()) return;
  // Hits logged while the keys were watched count before they leave.
  CountHits(r);
  // Each released watch's keys are ascending: one galloping pass each.
  size_t released = 0;
  for (const std::vector<uintptr_t>& keys : pending) {
    r.finger = 0;
    for (uintptr_t key : keys) {
      Entry* e = Lookup(r, key);
      if (e != nullptr && e->watchers > 0 && --e->watchers == 0) ++released;
    }
  }
  if (released > 0) {
    size_t out = 0;
    for (size_t i = 0; i < r.keys.size(); ++i) {
      if (r.entries[i].watchers == 0) continue;
      r.keys[out] = r.keys[i];
      r.entries[out] = r.entries[i];
      ++out;
    }
    r.keys.resize(out);
    r.entries.resize(out);
    r.finger = 0;
    r.stale_filter_bits += released;
  }
  if (FilterNeedsRebuild(r)) {
    RebuildFilter(r);
  } else {
    Publish(r);
  }
  if (r.keys.empty() && r.installed) {
    r.armed = false;
    Publish(r);
    UninstallHooks();
    r.installed = false;
    r.keys.shrink_to_fit();
    r.entries.shrink_to_fit();
    r.hit_log.clear();
    r.hit_log.shrink_to_fit();
    r.scratch.clear();
    r.scratch.shrink_to_fit();
    r.counted = r.hits;
  }
}

}  // namespace

uint8_t WatchedObjects::KeyOffset(PyTypeObject* type) {
#if PY_VERSION_HEX >= 0x030D0000
  (void)type;
  return 0;
#else
  return static_cast<uint8_t>(SizeofTypePreHeader(type));
#endif
}

absl::StatusOr<std::shared_ptr<WatchedObjects>> WatchedObjects::Watch(
    const std::vector<uintptr_t>& sorted, std::vector<uint8_t> key_offsets) {
  Registry& r = R();
  FlushLocked(r);
  std::shared_ptr<WatchedObjects> w(new WatchedObjects());
  // Megabytes per million members, written once: in huge pages where the
  // kernel offers them (huge_pages.h), as is the hit log.
  ReserveHuge(w->addresses_, sorted.size());
  w->addresses_.assign(sorted.begin(), sorted.end());
  AssignHuge(w->deaths_, sorted.size(), uint32_t{0});
  const bool offsets_given = key_offsets.size() == sorted.size();
  if (offsets_given) {
    w->pre_ = std::move(key_offsets);
  } else {
    AssignHuge(w->pre_, sorted.size(), uint8_t{0});
  }
  if (sorted.empty()) return w;
  if (!r.installed) {
    r.intact = true;
    AssignHuge(r.hit_log, kHitLogSize, uintptr_t{0});
    r.scratch.assign(kCountBatch, 0);
    r.log_from = r.hits;
    r.counted = r.hits;
    absl::Status s = InstallHooks();
    if (!s.ok()) return s;
    r.installed = true;
  } else if (!HooksInPlace()) {
    // Displaced (e.g. tracemalloc started on 3.13, or stopped on 3.11/3.12
    // after starting below ours): deaths may have been missed meanwhile;
    // put ours back in the chain for what is watched from now on.
    r.intact = false;
    absl::Status s = InstallHooks();
    if (!s.ok()) return s;
  }
  // Hits logged so far count against the keys watched so far only.
  CountHits(r);
  const size_t n = sorted.size();
  // Each member's key needs its type (the pre-header on 3.11/3.12), unless
  // the caller gave the offsets: the object 2 * kPrefetchAhead members
  // later is fetched meanwhile. Keys mostly ascend with the members; where
  // they do not, see `order` below.
  for (size_t i = 0; !offsets_given && i < n; ++i) {
    if (i + 2 * kPrefetchAhead < n) {
      __builtin_prefetch(
          reinterpret_cast<void*>(sorted[i + 2 * kPrefetchAhead]));
    }
    w->pre_[i] = PreHeaderOf(reinterpret_cast<PyObject*>(sorted[i]));
  }
  auto key_of = [&](size_t i) { return sorted[i] - w->pre_[i]; };
  // Members in key order. Keys usually ascend with the addresses, but two
  // members can share a key or cross: a static object's pre-header is
  // computed as if it had one (3.12's static _PyNotImplemented_Type sits
  // 16 bytes after the 16-byte _Py_NotImplementedStruct, so both have the
  // key of the latter). The merge below needs keys in order and counts one
  // entry per distinct key, each watched once per member.
  //
  // A key is its address less a pre-header of a few words at most, and
  // members lie at least 16 bytes apart, so a member's key can pass only
  // the keys of the two or three members just below it: an insertion sort
  // from the first descent on is linear here, and stable, as the merge
  // needs for shared keys. (A stable_sort of every member, for the one
  // pair that 3.12's heaps always have, took a fifth of hp.heap() there.)
  std::vector<uint32_t> order;
  for (size_t i = 1; i < n; ++i) {
    if (key_of(i) <= key_of(i - 1)) {
      order.resize(n);
      for (size_t m = 0; m < n; ++m) order[m] = static_cast<uint32_t>(m);
      for (size_t p = i; p < n; ++p) {
        const uint32_t m = order[p];
        const uintptr_t key = key_of(m);
        size_t q = p;
        for (; q > 0 && key_of(order[q - 1]) > key; --q) {
          order[q] = order[q - 1];
        }
        order[q] = m;
      }
      break;
    }
  }
  auto member = [&](size_t p) -> size_t {
    return order.empty() ? p : order[p];
  };
  // How many distinct keys are new to the table (one merge pass).
  size_t fresh = 0;
  {
    size_t j = 0;
    for (size_t p = 0; p < n; ++p) {
      const uintptr_t key = key_of(member(p));
      if (p > 0 && key == key_of(member(p - 1))) continue;
      while (j < r.keys.size() && r.keys[j] < key) ++j;
      if (j == r.keys.size() || r.keys[j] != key) ++fresh;
    }
  }
  // Merge from the back, in place: every old key moves at most `fresh`
  // places up, and a new key gets a fresh entry. Members that share a key
  // share its entry.
  const size_t old_size = r.keys.size();
  // Room for an eighth more: the next set kept of the same heap (h =
  // hp.heap() again) adds a few keys, which must not copy every key and
  // entry into fresh memory.
  if (const size_t need = old_size + fresh; need > r.keys.capacity()) {
    MoveToHuge(r.keys, need + need / 8);
    MoveToHuge(r.entries, need + need / 8);
  }
  r.keys.resize(old_size + fresh);
  r.entries.resize(old_size + fresh);
  const bool rebuild = FilterNeedsRebuild(r);
  size_t j = old_size, k = old_size + fresh;
  for (size_t p = n; p-- > 0;) {
    const size_t i = member(p);
    const uintptr_t key = key_of(i);
    const bool same_as_next = p + 1 < n && key_of(member(p + 1)) == key;
    if (!same_as_next && k == j) {
      // Every fresh key is in place: the keys below stay where they are,
      // and this one is among them (watching a set again, the usual case,
      // takes this path from the start and moves nothing).
      while (r.keys[j - 1] > key) --j;
      k = --j;
    } else if (!same_as_next) {
      while (j > 0 && r.keys[j - 1] > key) {
        --j;
        --k;
        r.keys[k] = r.keys[j];
        r.entries[k] = r.entries[j];
      }
      --k;
      if (j > 0 && r.keys[j - 1] == key) {
        --j;
        r.keys[k] = key;
        r.entries[k] = r.entries[j];
      } else {
        r.keys[k] = key;
        r.entries[k] = Entry{};
        if (!rebuild) SetFilterBit(r, key);
      }
    }
    r.entries[k].watchers++;
    w->deaths_[i] = r.entries[k].deaths;
  }
  r.finger = 0;
  r.armed = true;
  if (rebuild) {
    RebuildFilter(r);
  } else {
    Publish(r);
  }
  return w;
}

WatchedObjects::~WatchedObjects() {
  // The keys, in place of the addresses (the watch is going); FlushLocked
  // finds each by galloping, in any order.
  for (size_t i = 0; i < addresses_.size(); ++i) addresses_[i] -= pre_[i];
  if (addresses_.empty()) return;
  Registry& r = R();
  absl::MutexLock lock(&r.pending_mu);
  r.pending.push_back(std::move(addresses_));
}

bool WatchedObjects::Same(size_t i) const {
  Registry& r = R();
  CountHits(r);
  // Every member's key is held until this watch is released.
  const Entry* e = Lookup(r, addresses_[i] - pre_[i]);
  return e != nullptr && e->deaths == deaths_[i];
}

int64_t WatchedObjects::Find(uintptr_t address) const {
  auto it = std::lower_bound(addresses_.begin(), addresses_.end(), address);
  if (it == addresses_.end() || *it != address) return -1;
  return it - addresses_.begin();
}

size_t WatchedObjects::MemoryBytes() const {
  return sizeof(WatchedObjects) + addresses_.capacity() * sizeof(uintptr_t) +
         deaths_.capacity() * sizeof(uint32_t) +
         pre_.capacity() * sizeof(uint8_t);
}

void FlushDeathWatch() { FlushLocked(R()); }

uint64_t DeathWatchEpoch() { return R().hits; }

bool DeathsSince(uint64_t since, std::vector<uintptr_t>* keys) {
  const Registry& r = R();
  keys->clear();
  if (since >= r.hits) return since == r.hits;
  if (r.hit_log.empty() || since < r.log_from ||
      r.hits - since > r.hit_log.size()) {
    return false;
  }
  const size_t mask = r.hit_log.size() - 1;
  keys->reserve(r.hits - since);
  for (uint64_t d = since; d < r.hits; ++d) {
    keys->push_back(r.hit_log[d & mask]);
  }
  return true;
}

bool DeathWatchIntact() {
  Registry& r = R();
  if (r.installed && !HooksInPlace()) r.intact = false;
  return r.intact;
}

DeathWatchStats GetDeathWatchStats() {
  Registry& r = R();
  DeathWatchIntact();
  DeathWatchStats s;
  s.installed = r.installed;
  s.watched_blocks = r.keys.size();
  s.deaths_seen = r.hits;
  s.intact = r.intact;
  return s;
}

}  // namespace annex::python
