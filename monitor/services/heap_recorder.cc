// The in-process heap recorder. See heap_recorder.h.
#include "monitor/services/heap_recorder.h"

#include <Python.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glue/growth_paths.h"
#include "glue/heap_view.h"
#include "glue/retainers.h"
#include "glue/session.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/graph.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/guards.h"

namespace annex::services {

HeapRecorder::HeapRecorder(python::AnnexRuntime* runtime,
                           glue::Session* session, Config config)
    : runtime_(runtime),
      session_(session),
      config_(std::move(config)),
      file_(config_.path, config_.max_bytes) {}

HeapRecorder::~HeapRecorder() { Stop(); }

void HeapRecorder::Start() {
  thread_.Start("annex-recorder", [this] { ThreadMain(); });
}

void HeapRecorder::Stop() { thread_.Stop(); }

int64_t HeapRecorder::records() const {
  absl::MutexLock lock(&thread_.mu());
  return records_;
}

absl::Status HeapRecorder::last_error() const {
  absl::MutexLock lock(&thread_.mu());
  return last_error_;
}

void HeapRecorder::ThreadMain() {
  // Where: its own thread; no Python except through runtime_->Run.
  const glue::RecordLabels labels =
      glue::ProcessLabels(config_.program, PY_VERSION);
  bool reported = false;
  // The last record's totals and addresses, with config_.retainers.
  glue::GrowthBaseline previous;
  absl::Time next = absl::Now();
  thread_.mu().Lock();
  while (!thread_.stopping()) {
    if (absl::Now() < next) {
      thread_.WaitUntil(next);
      continue;
    }
    next = absl::Now() + config_.interval;
    thread_.mu().Unlock();
    // The walk only, on the annex thread; its result is plain data.
    std::optional<absl::StatusOr<glue::KindedSet>> heap;
    // With config_.retainers: the walk's edges.
    std::shared_ptr<const heap::HeapGraph> graph;
    std::string growth_paths;
    std::vector<uint32_t> kinds;  // with config_.retainers: node v's kind
    absl::Time start, end;
    absl::Status ran = runtime_->Run([&](const python::ThreadStates&) {
      absl::StatusOr<glue::HeapView*> view = session_->Get<glue::HeapView>();
      if (!view.ok()) {
        heap = view.status();
        return;
      }
      // The monitor's limit, not whatever the last hp that asked set.
      (*view)->set_pause_limit((*view)->default_pause_limit(),
                               "Options::question_pause_limit");
      start = absl::Now();
      // One question: the growth paths name edges of the walk's objects.
      heap::HeapEngine::Question question((*view)->engine());
      heap = (*view)->Heap(nullptr, /*keep=*/false, heap::Sizing::kExact,
                           config_.retainers ? &graph : nullptr);
      if (config_.retainers && question.status().ok() && heap->ok()) {
        const glue::KindedSet& set = **heap;
        kinds = (set.clodo.empty() ? set.kinds : set.clodo).ToVector();
        glue::GrowthBaseline now =
            glue::MakeGrowthBaseline(*graph, kinds, *set.kind_names);
        // Within the walk's pause limit: past it, no more paths.
        glue::GrowthPathOptions paths;
        paths.stop = &(*view)->engine().question_stop();
        growth_paths = glue::GrowthPathsJson(*graph, kinds, *set.kind_names,
                                             now, previous, paths);
        previous = std::move(now);
      }
      end = absl::Now();
    });
    absl::Status status = ran;
    if (status.ok() && !heap.has_value()) {
      status = absl::InternalError("the annex did not walk");
    }
    if (status.ok() && !heap->ok()) status = heap->status();
    std::string retainers;
    if (status.ok() && config_.retainers) {
      // The dominator tree, here, with the target running: plain data.
      const heap::DominatorTree tree = heap::DominatorTree::Build(*graph);
      const glue::KindedSet& set = **heap;
      retainers = glue::RetainersJson(*graph, tree, kinds, *set.kind_names);
      graph.reset();
    }
    if (status.ok()) {
      glue::HeapRecord record = glue::MakeHeapRecord(
          std::move(**heap), config_.top_rows,
          absl::ToInt64Microseconds(end - start), absl::ToUnixMicros(start));
      heap.reset();
      record.rss_bytes = glue::ResidentBytes();
      record.labels = labels;
      record.retainers_json = std::move(retainers);
      record.growth_paths_json = std::move(growth_paths);
      status = file_.Append(record.Text(config_.format));
    }
    thread_.mu().Lock();
    if (status.ok()) {
      ++records_;
      if (config_.max_records > 0 && records_ >= config_.max_records) break;
    } else {
      last_error_ = status;
      if (!reported && !thread_.stopping()) {
        reported = true;
        std::fprintf(stderr, "annex: recording to %s: %s\n",
                     config_.path.c_str(),
                     static_cast<std::string>(status.message()).c_str());
      }
    }
  }
  thread_.mu().Unlock();
}

}  // namespace annex::services
