// The watchdog's heap figures and report sections: see watchdog_heap.h.
#include "monitor/services/watchdog_heap.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/heap_view.h"
#include "glue/session.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/target_threads.h"

namespace annex::services {

// Every kind of one walk, largest total size first.
struct WatchdogHeap::Rows {
  std::vector<watchdog::KindFigures> kinds;
  int64_t count = 0;
  int64_t bytes = 0;
};

namespace {

void SortBySize(std::vector<watchdog::KindFigures>& kinds) {
  std::sort(kinds.begin(), kinds.end(),
            [](const watchdog::KindFigures& a, const watchdog::KindFigures& b) {
              if (a.bytes != b.bytes) return a.bytes > b.bytes;
              if (a.count != b.count) return a.count > b.count;
              return a.kind < b.kind;
            });
}

// A Heapy-style partition table of `rows`. Where: any thread.
std::string PartitionText(const std::vector<watchdog::KindFigures>& kinds,
                          int64_t count, int64_t bytes, size_t max_rows) {
  std::string out = absl::StrFormat(
      "Partition of a set of %d objects. Total size = %d bytes.\n"
      " Index  Count   %%     Size   %% Cumulative  %% Kind (type)\n",
      count, bytes);
  int64_t cumulative = 0;
  for (size_t i = 0; i < kinds.size() && i < max_rows; ++i) {
    const watchdog::KindFigures& k = kinds[i];
    cumulative += k.bytes;
    absl::StrAppendFormat(&out, "%6d %6d %3d %8d %3d %9d %3d %s\n", i, k.count,
                          count ? k.count * 100 / count : 0, k.bytes,
                          bytes ? k.bytes * 100 / bytes : 0, cumulative,
                          bytes ? cumulative * 100 / bytes : 0, k.kind);
  }
  if (kinds.size() > max_rows) {
    absl::StrAppendFormat(&out, "<%d more rows>\n", kinds.size() - max_rows);
  }
  return out;
}

// Growth by kind from `ref` to `now`, largest byte growth first, at most
// `max_rows` kinds that grew. Where: any thread.
std::string GrowthText(const std::vector<watchdog::KindFigures>& ref,
                       const std::vector<watchdog::KindFigures>& now,
                       size_t max_rows) {
  std::unordered_map<std::string, const watchdog::KindFigures*> before;
  for (const watchdog::KindFigures& k : ref) before[k.kind] = &k;
  std::vector<watchdog::KindFigures> growth;
  for (const watchdog::KindFigures& k : now) {
    auto it = before.find(k.kind);
    watchdog::KindFigures g{k.kind, k.count, k.bytes};
    if (it != before.end()) {
      g.count -= it->second->count;
      g.bytes -= it->second->bytes;
    }
    if (g.bytes > 0 || g.count > 0) growth.push_back(std::move(g));
  }
  SortBySize(growth);
  if (growth.empty()) return "  (no kind grew)\n";
  std::string out = "  +Count     +Size Kind (type)\n";
  for (size_t i = 0; i < growth.size() && i < max_rows; ++i) {
    absl::StrAppendFormat(&out, "  %+6d %+9d %s\n", growth[i].count,
                          growth[i].bytes, growth[i].kind);
  }
  if (growth.size() > max_rows) {
    absl::StrAppendFormat(&out, "  <%d more kinds grew>\n",
                          growth.size() - max_rows);
  }
  return out;
}

}  // namespace

std::vector<double> WatchdogHeap::PauseBucketBounds() {
  // 20-30 ms per million objects (docs/heap-engine.md): 1 ms to 10 s.
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,  0.5,    1,     2.5,  5,     10};
}

WatchdogHeap::WatchdogHeap(python::AnnexRuntime* runtime,
                           glue::Session* session, Config config)
    : runtime_(runtime),
      session_(session),
      config_(config),
      pauses_(watchdog::DurationHistogram::WithBounds(PauseBucketBounds())),
      tracker_(config.top_kinds, config.tracked_kinds) {}

WatchdogHeap::~WatchdogHeap() { Stop(); }

void WatchdogHeap::Start() {
  thread_.Start("annex-wdog-heap", [this] { ThreadMain(); });
}

void WatchdogHeap::Stop() { thread_.Stop(); }

int64_t WatchdogHeap::walks() const {
  absl::MutexLock lock(&thread_.mu());
  return walks_;
}

void WatchdogHeap::FillMetrics(watchdog::Metrics& metrics) const {
  absl::MutexLock lock(&thread_.mu());
  metrics.heap_walk_pauses = pauses_;
}

void WatchdogHeap::AddPause(absl::Duration pause) {
  absl::MutexLock lock(&thread_.mu());
  pauses_.Add(pause);
}

void WatchdogHeap::Fill(watchdog::MemorySample& sample) {
  absl::MutexLock lock(&thread_.mu());
  if (!have_snapshot_ || config_.interval <= absl::ZeroDuration()) return;
  const absl::Duration age = absl::Now() - snapshot_time_;
  if (age > 2 * config_.interval + absl::Seconds(1)) return;  // stale
  sample.python_bytes = snapshot_.python_bytes;
  sample.object_count = snapshot_.object_count;
  sample.top_kinds = snapshot_.top_kinds;
  sample.tracked_kinds = snapshot_.tracked_kinds;
  sample.source = watchdog::MemorySource::kHeapEngine;
  sample.age = age;
}

std::string WatchdogHeap::Report(absl::Duration timeout) {
  absl::MutexLock lock(&thread_.mu());
  if (thread_.stopping()) {
    return "heap partition: absent (the monitor is stopping)\n";
  }
  if (requested_ > served_) {
    return "heap partition: absent (an earlier request still waits for the "
           "annex to get the GIL: a target thread keeps it)\n";
  }
  const int64_t id = ++requested_;
  auto served = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(thread_.mu()) {
    return served_ >= id || thread_.stopping();
  };
  // Await releases the mutex, which wakes the thread's wait for requests.
  const bool answered =
      thread_.mu().AwaitWithTimeout(absl::Condition(&served), timeout);
  if (!answered) {
    return absl::StrCat(
        "heap partition: absent (the annex did not get the GIL within ",
        absl::FormatDuration(timeout),
        ": a target thread keeps it, or the annex is busy)\n");
  }
  if (served_ < id) return "heap partition: absent (the monitor is stopping)\n";
  return report_;
}

void WatchdogHeap::ThreadMain() {
  // Where: its own thread; no Python except through runtime_->Run.
  thread_.mu().Lock();
  absl::Time next = absl::Now();  // the first walk is the reference point
  auto requested = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(thread_.mu()) {
    return requested_ > served_;
  };
  while (!thread_.stopping()) {
    const bool report = requested_ > served_;
    const bool due = absl::Now() >= next;
    if (!report && !due) {
      thread_.WaitUntil(next, requested);
      continue;
    }
    const int64_t request = requested_;
    thread_.mu().Unlock();
    std::string text;
    absl::Status status = runtime_->Run([&](const python::ThreadStates&) {
      // The target waits from here (the annex holds the GIL) to the end.
      const absl::Time held = absl::Now();
      Walk(report, &text);
      AddPause(absl::Now() - held);
    });
    if (!status.ok()) {
      text = absl::StrCat("heap partition: absent (", status.message(), ")\n");
    }
    thread_.mu().Lock();
    if (report) {
      report_ = std::move(text);
      served_ = request;
    }
    if (due) {
      next = config_.interval > absl::ZeroDuration()
                 ? absl::Now() + config_.interval
                 : absl::InfiniteFuture();
    }
  }
  thread_.mu().Unlock();
}

void WatchdogHeap::Walk(bool report, std::string* report_text) {
  // Where: annex thread, GIL held, annex current (AnnexRuntime::Run).
  if (engine_ == nullptr) {
    engine_ = std::make_unique<heap::HeapEngine>(runtime_->thread_states());
    engine_->Hide(heap::ObjectSet::FromUnsorted(runtime_->target_footprint()));
    heap::QuestionStop::Limits limits;
    limits.pause_limit = config_.pause_limit;
    limits.limit_name = "Options::question_pause_limit";
    engine_->set_question_limits(limits);
    engine_->set_lanes(config_.lanes);
  }
  if (!namer_.has_value()) {  // the kind names hp shows (annex current)
    absl::StatusOr<glue::TypeNamer> namer = glue::TypeNamer::Create();
    if (namer.ok()) namer_ = std::move(*namer);
    PyErr_Clear();
  }
  // One question: the walk's objects are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  heap::HeapResult stats;
  absl::StatusOr<heap::HeapGraph> graph =
      question.status().ok()
          ? engine_->Graph(heap::GraphOptions::NodesOnly(), &stats)
          : absl::StatusOr<heap::HeapGraph>(question.status());
  if (!graph.ok()) {
    if (report) {
      *report_text = absl::StrCat(
          "heap partition: absent (the heap walk "
          "failed: ",
          graph.status().message(), ")\n");
    }
    return;
  }
  // Every node was found alive by this walk and the GIL has been held
  // since, with no Python code run: reading its type is allowed (rule 10).
  auto rows = std::make_shared<Rows>();
  {
    std::unordered_map<PyTypeObject*, size_t> index;
    std::vector<PyTypeObject*> types;
    for (uint32_t v = 0; v < graph->size(); ++v) {
      PyTypeObject* type =
          Py_TYPE(reinterpret_cast<PyObject*>(graph->addresses[v]));
      auto [it, added] = index.emplace(type, types.size());
      if (added) {
        types.push_back(type);
        rows->kinds.push_back({});
      }
      rows->kinds[it->second].count++;
      rows->kinds[it->second].bytes += static_cast<int64_t>(graph->sizes[v]);
    }
    rows->count = graph->size();
    rows->bytes = static_cast<int64_t>(stats.total_bytes);
    // Kinds by name: two classes of the same name fold into one row.
    std::unordered_map<std::string, size_t> by_name;
    std::vector<watchdog::KindFigures> folded;
    for (size_t i = 0; i < types.size(); ++i) {
      std::string name =
          namer_.has_value() ? namer_->Name(types[i]) : types[i]->tp_name;
      auto [it, added] = by_name.emplace(name, folded.size());
      if (added) folded.push_back({std::move(name), 0, 0});
      folded[it->second].count += rows->kinds[i].count;
      folded[it->second].bytes += rows->kinds[i].bytes;
    }
    rows->kinds = std::move(folded);
    SortBySize(rows->kinds);
  }
  graph = absl::UnknownError("released");  // drop the edges now

  std::shared_ptr<Rows> reference;
  absl::Time reference_time;
  {
    absl::MutexLock lock(&thread_.mu());
    ++walks_;
    have_snapshot_ = true;
    snapshot_time_ = absl::Now();
    snapshot_.object_count = rows->count;
    snapshot_.python_bytes = rows->bytes;
    snapshot_.top_kinds.assign(
        rows->kinds.begin(),
        rows->kinds.begin() + std::min(rows->kinds.size(), config_.top_kinds));
    snapshot_.tracked_kinds = tracker_.Update(rows->kinds);
    if (reference_ == nullptr) {
      reference_ = rows;
      reference_time_ = snapshot_time_;
    }
    reference = reference_;
    reference_time = reference_time_;
  }
  if (!report) return;

  std::string text = absl::StrFormat(
      "heap partition (heap engine; the walk paused the target %.1f ms):\n",
      stats.pause_ns / 1e6);
  absl::StrAppend(&text, PartitionText(rows->kinds, rows->count, rows->bytes,
                                       config_.top_kinds));
  // The last reference point: the latest set by any hp of the session
  // (hp.setref() in a console or host namespace) when one is set, else
  // this service's first walk.
  glue::HeapView* view =
      session_ != nullptr ? session_->Peek<glue::HeapView>() : nullptr;
  std::shared_ptr<const glue::ReferencePoint> latest =
      view != nullptr ? view->latest_ref() : nullptr;
  if (latest != nullptr) {
    absl::StatusOr<glue::KindedSet> fresh =
        view->Heap(latest.get(), /*keep=*/false);
    if (fresh.ok()) {
      absl::StrAppend(&text,
                      "top growth since the reference point (hp.setref()): "
                      "objects new since then\n",
                      fresh->PartitionTable(config_.top_kinds));
    } else {
      absl::StrAppend(&text,
                      "top growth since the reference point (hp.setref()): "
                      "absent (",
                      fresh.status().message(), ")\n");
    }
  } else {
    absl::StrAppend(
        &text, "top growth since the reference point (the watchdog's first ",
        "heap walk, ", absl::FormatTime(reference_time), ", ", reference->count,
        " objects, ", reference->bytes, " bytes):\n",
        GrowthText(reference->kinds, rows->kinds, config_.top_kinds));
  }
  *report_text = std::move(text);
}

}  // namespace annex::services
