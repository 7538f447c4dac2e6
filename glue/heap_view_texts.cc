// Values and names of a set's members read in place: ReadTexts, and
// x.byid's lines.
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/heap_view.h"

namespace annex::glue {

absl::StatusOr<MemberTexts> HeapView::ReadTexts(
    const KindedSet& set, const std::function<bool(size_t)>& want) {
  // One question: the objects found are read before the GIL can change
  // hands (heap_engine.h).
  heap::HeapEngine::Question question(*engine_);
  if (!question.status().ok()) return question.status();
  heap::SharedGraph graph = NodesOnlyGraph();
  if (!graph.ok()) return graph.status();
  MemberTexts out;
  out.alive.assign(set.count(), 0);
  std::optional<heap::ObjectSet> unreachable;  // looked up when needed
  uint32_t cursor = 0;                         // set.addresses ascend
  for (size_t i = 0; i < set.count(); ++i) {
    const uintptr_t a = set.addresses[i];
    if (graph->FindAscending(a, &cursor) < 0) {
      if (!unreachable) {
        absl::StatusOr<heap::ObjectSet> u = engine_->Unreachable();
        if (!u.ok()) return u.status();
        unreachable = std::move(*u);
      }
      if (!unreachable->contains(a)) continue;
    }
    if (!SameObject(set, i)) continue;  // died; a new object may sit there
    PyObject* obj = reinterpret_cast<PyObject*>(a);
    // Still the same object? Same kind as recorded (an address can be reused).
    if (namer_.Name(Py_TYPE(obj)) != (*set.kind_names)[set.kinds[i]]) continue;
    out.alive[i] = 1;
    if (want(i)) out.texts.emplace_back(i, DescribeObject(obj));
  }
  return out;
}

namespace {

// x.byid's line of member i: address, kind, size and the value or length;
// `text` null: the member is no longer alive. Plain data: any thread.
std::string ByIdLine(const KindedSet& set, size_t i, const ObjectText* text) {
  std::string line =
      absl::StrFormat("0x%x %s %d bytes", set.addresses[i],
                      (*set.kind_names)[set.kinds[i]], set.sizes[i]);
  if (text == nullptr) {
    line += " (no longer alive)";
  } else if (!text->value.empty()) {
    absl::StrAppend(&line, " ", text->value);
  } else if (text->length >= 0) {
    absl::StrAppend(&line, " len=", text->length);
  }
  return line;
}

}  // namespace

absl::StatusOr<ByIdResult> HeapView::ById(const KindedSet& set, size_t limit) {
  size_t picked = 0;
  absl::StatusOr<MemberTexts> texts =
      ReadTexts(set, [&](size_t) { return picked++ < limit; });
  if (!texts.ok()) return texts.status();
  ByIdResult out;
  std::vector<size_t> live;
  for (size_t i = 0; i < set.count(); ++i) {
    if (texts->alive[i]) live.push_back(i);
  }
  for (const auto& [i, text] : texts->texts) {
    out.lines.push_back(ByIdLine(set, i, &text));
  }
  out.live = set.Subset(live);
  out.live.classifier = Classifier(Classifier::kId);
  return out;
}

absl::StatusOr<std::vector<std::string>> HeapView::ByIdLines(
    const KindedSet& set, size_t first, size_t end) {
  absl::StatusOr<MemberTexts> texts =
      ReadTexts(set, [&](size_t i) { return i >= first && i < end; });
  if (!texts.ok()) return texts.status();
  std::vector<std::string> lines;
  size_t k = 0;
  for (size_t i = first; i < end && i < set.count(); ++i) {
    while (k < texts->texts.size() && texts->texts[k].first < i) ++k;
    const bool have = k < texts->texts.size() && texts->texts[k].first == i;
    lines.push_back(ByIdLine(set, i, have ? &texts->texts[k].second : nullptr));
  }
  return lines;
}

}  // namespace annex::glue
