// HeapView::ClassifyParts keeps only the members that are still the
// objects a set recorded: on a set without identity (a host's, made with
// keep=false), members that died are left out whether their address is
// free now or holds an object of another type, on one lane and on
// several lanes in small slices.
#include <Python.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "glue/annex_access.h"
#include "glue/heap_view.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/lanes.h"
#include "monitor/heap/referrers.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;

class LabelPartsTest : public ::testing::TestWithParam<heap::Lanes> {
 protected:
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }

  // Runs `work` with the session's heap view on the annex thread.
  void OnAnnex(const std::function<void(glue::HeapView&)>& work) {
    glue::Session* session = monitor_.session();
    ASSERT_NE(session, nullptr);
    auto access = session->Get<glue::AnnexAccess>();
    ASSERT_TRUE(access.ok()) << access.status();
    ASSERT_TRUE((*access)
                    ->runtime()
                    .Run([&](const python::ThreadStates&) {
                      auto view = session->Get<glue::HeapView>();
                      ASSERT_TRUE(view.ok()) << view.status();
                      work(**view);
                    })
                    .ok());
  }

  // The whole heap as a set walked with the test's lanes: with identity
  // (`keep`, as hp.heap()'s) or without (a host's).
  glue::KindedSet HeapSet(bool keep) {
    glue::KindedSet out;
    OnAnnex([&](glue::HeapView& view) {
      view.engine().set_lanes(GetParam());
      auto set = view.Heap(nullptr, keep);
      ASSERT_TRUE(set.ok()) << set.status();
      out = std::move(*set);
    });
    return out;
  }

  // ClassifyParts(set, part) on the annex thread.
  absl::StatusOr<glue::LiveKinds> ClassifyNow(const glue::KindedSet& set,
                                              glue::Classifier::Part part) {
    absl::StatusOr<glue::LiveKinds> live = absl::UnknownError("not run");
    OnAnnex([&](glue::HeapView& view) {
      live = view.ClassifyParts(set, glue::Classifier(part));
    });
    return live;
  }

  Monitor monitor_;
};

// Members of kind `name` in `set`.
size_t CountOfKind(const glue::KindedSet& set, const std::string& name) {
  size_t n = 0;
  for (size_t i = 0; i < set.count(); ++i) {
    n += (*set.kind_names)[set.kinds[i]] == name;
  }
  return n;
}

TEST_P(LabelPartsTest, LeavesOutMembersThatDiedOrWereReplaced) {
  // Gone and Other have the same size, so pymalloc gives freed Gone
  // addresses to new Others (its free lists are last in, first out).
  ASSERT_TRUE(
      RunTargetCode("class Gone:\n"
                    "    __slots__ = ('a',)\n"
                    "class Other:\n"
                    "    __slots__ = ('a',)\n"
                    "class Stays:\n"
                    "    __slots__ = ('a',)\n"
                    "gone = [Gone() for _ in range(3000)]\n"
                    "stays = [Stays() for _ in range(2000)]\n"
                    "gone_ids = set(map(id, gone))\n"));
  const glue::KindedSet before = HeapSet(/*keep=*/false);
  ASSERT_EQ(CountOfKind(before, "__main__.Gone"), 3000u);
  ASSERT_TRUE(
      RunTargetCode("del gone\n"
                    "others = [Other() for _ in range(3000)]\n"
                    "reused = sum(id(o) in gone_ids for o in others)\n"));
  // Some Gone addresses now hold an Other: the type check's case, besides
  // addresses no object holds now (no node).
  ASSERT_GT(TargetLong("reused"), 0);
  ASSERT_LT(TargetLong("reused"), 3000);
  absl::StatusOr<glue::LiveKinds> live =
      ClassifyNow(before, glue::Classifier::kRcs);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(CountOfKind(live->live, "__main__.Gone"), 0u);
  EXPECT_EQ(CountOfKind(live->live, "__main__.Stays"), 2000u);
  EXPECT_LT(live->live.count(), before.count());
  ASSERT_EQ(live->parts.size(), 1u);
  EXPECT_EQ(live->parts[0].of.size(), live->live.count());
  ASSERT_TRUE(RunTargetCode(
      "del others, stays, gone_ids, reused, Gone, Other, Stays\n"));
}

// Objects of a size class of their own (nine slots), freed and not
// replaced: their addresses are in no walk now. A set with identity knows
// them dead besides (the dead members' slices of the kept check).
TEST_P(LabelPartsTest, LeavesOutMembersThatDiedWithoutReplacement) {
  for (const bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "with identity" : "without identity");
    ASSERT_TRUE(
        RunTargetCode("class Freed:\n"
                      "    __slots__ = tuple('abcdefghi')\n"
                      "freed = [Freed() for _ in range(2000)]\n"));
    const glue::KindedSet before = HeapSet(keep);
    ASSERT_EQ(CountOfKind(before, "__main__.Freed"), 2000u);
    ASSERT_TRUE(RunTargetCode("del freed\n"));
    absl::StatusOr<glue::LiveKinds> live =
        ClassifyNow(before, glue::Classifier::kVia);
    ASSERT_TRUE(live.ok()) << live.status();
    EXPECT_EQ(CountOfKind(live->live, "__main__.Freed"), 0u);
    EXPECT_LE(live->live.count() + 2000, before.count());
    ASSERT_EQ(live->parts.size(), 1u);
    EXPECT_EQ(live->parts[0].of.size(), live->live.count());
    ASSERT_TRUE(RunTargetCode("del Freed\n"));
  }
}

// Rcs, Via and their combination label every member as one lane does:
// the same labels, numbered in the same order (the sets of referrer kinds
// and of edge texts are found slice by slice and labelled in slice
// order). Both in one annex work item, so the heap is the same.
TEST_P(LabelPartsTest, LanesLabelAsOneLaneDoes) {
  ASSERT_TRUE(
      RunTargetCode("class Held:\n"
                    "    pass\n"
                    "held = [Held() for _ in range(3000)]\n"
                    "pairs = [(h, i) for i, h in enumerate(held)]\n"
                    "by_name = {'k%d' % i: h for i, h in enumerate(held)}\n"));
  const glue::KindedSet set = HeapSet(/*keep=*/true);
  for (const glue::Classifier::Part part :
       {glue::Classifier::kRcs, glue::Classifier::kVia}) {
    absl::StatusOr<glue::LiveKinds> one = absl::UnknownError("not run");
    absl::StatusOr<glue::LiveKinds> many = absl::UnknownError("not run");
    OnAnnex([&](glue::HeapView& view) {
      view.engine().set_lanes(heap::Lanes(1));
      one = view.ClassifyParts(set, glue::Classifier(part));
      view.engine().set_lanes(GetParam());
      many = view.ClassifyParts(set, glue::Classifier(part));
    });
    ASSERT_TRUE(one.ok()) << one.status();
    ASSERT_TRUE(many.ok()) << many.status();
    ASSERT_EQ(one->parts.size(), 1u);
    ASSERT_EQ(many->parts.size(), 1u);
    EXPECT_EQ(many->live.count(), one->live.count());
    EXPECT_GT(one->parts[0].names->size(), 3u);
    EXPECT_EQ(*many->parts[0].names, *one->parts[0].names);
    EXPECT_EQ(many->parts[0].of.ToVector(), one->parts[0].of.ToVector());
  }
  ASSERT_TRUE(RunTargetCode("del held, pairs, by_name, Held\n"));
}

// Via names most edges on the lanes (the forward edges' way) and leaves
// the rest to the question's thread; through a reverse index every edge
// is named on the question's thread, one referrer at a time. Both must
// give every member the same label, over referrers of every kind: short
// and long lists and tuples (a member held twice), instances with inline
// attributes and with a dict, a list subclass's attribute, dicts, a
// class's attribute, a closure's cell.
TEST_P(LabelPartsTest, ViaOnTheLanesNamesAsTheReverseIndexWayDoes) {
  ASSERT_TRUE(RunTargetCode(R"py(
class Via:
    pass
class ViaList(list):
    pass
class ViaHolder:
    pass
def _via_setup():
    global via_items, via_holders, via_long, via_dicts, via_cells
    via_items = [Via() for _ in range(200)]
    via_holders = []
    for i, v in enumerate(via_items):
        h = ViaHolder()
        h.first = v
        if i % 3 == 0:
            h.__dict__  # the attributes in a dict object
        h.again = v if i % 5 == 0 else None
        via_holders.append(h)
        via_holders.append((v, i, v))
        l = ViaList([v]); l.also = via_items[-1 - i]
        via_holders.append(l)
    via_long = list(via_items) + [via_items[0]]
    via_dicts = [{'k%d' % i: v} for i, v in enumerate(via_items)]
    via_cells = [(lambda: v) for v in via_items[:20]]
    ViaHolder.class_held = via_items[7]
_via_setup()
del _via_setup
)py"));
  const glue::KindedSet set = HeapSet(/*keep=*/true);
  OnAnnex([&](glue::HeapView& view) {
    view.engine().set_lanes(GetParam());
    heap::HeapEngine::Question question(view.engine());
    ASSERT_TRUE(question.status().ok()) << question.status();
    heap::SharedGraph graph = view.engine().Shared(heap::GraphOptions());
    ASSERT_TRUE(graph.ok()) << graph.status();
    const heap::ReverseIndex reverse = heap::ReverseIndex::Build(*graph);
    const glue::Classifier via(glue::Classifier::kVia);
    absl::StatusOr<glue::KindedSet> lanes =
        view.ClassifyWithin(*graph, nullptr, set, via);
    absl::StatusOr<glue::KindedSet> one_by_one =
        view.ClassifyWithin(*graph, &reverse, set, via);
    ASSERT_TRUE(lanes.ok()) << lanes.status();
    ASSERT_TRUE(one_by_one.ok()) << one_by_one.status();
    ASSERT_EQ(lanes->count(), one_by_one->count());
    ASSERT_GT(lanes->count(), 2000u);
    size_t mismatches = 0;
    std::map<std::string, size_t> seen;  // members by label
    for (size_t i = 0; i < lanes->count(); ++i) {
      const std::string& a = lanes->LabelNames()[lanes->LabelOf(i)];
      const std::string& b = one_by_one->LabelNames()[one_by_one->LabelOf(i)];
      if (a != b && ++mismatches <= 5) {
        ADD_FAILURE() << "member " << i << ": " << a << " vs " << b;
      }
      ++seen[a];
    }
    EXPECT_EQ(mismatches, 0u);
    // Edges the lanes name (attributes inline and in a dict, items) and
    // edges left to the caller (a dict's values) are all in the labels.
    for (const char* label : {"'.first'", "'.again'", "'[0]'", "\"['also']\"",
                              "\"['k1']\"", "\"['class_held']\""}) {
      EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [&](const auto& entry) {
        return entry.first.find(label) != std::string::npos;
      })) << label;
    }
  });
  ASSERT_TRUE(RunTargetCode(
      "del via_items, via_holders, via_long, via_dicts, via_cells, Via, "
      "ViaList, ViaHolder\n"));
}

// Options::question_threads chooses the lanes of the session's heap
// engine: 0 what the machine allows, 1 to 4 as said, others refused.
TEST(QuestionThreadsTest, TheOptionSetsTheEnginesLanes) {
  for (int bad : {-1, heap::Lanes::kMaxLanes + 1}) {
    Monitor monitor;
    Options options;
    options.question_threads = bad;
    const absl::Status s = monitor.Start(options);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("question_threads"), absl::string_view::npos)
        << s;
  }
  for (int threads : {0, 1, 3}) {
    SCOPED_TRACE(threads);
    Monitor monitor;
    Options options;
    options.question_threads = threads;
    ASSERT_TRUE(monitor.Start(options).ok());
    auto out = monitor.ExecInAnnex("print(len(hp.heap()) > 1000)");
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, "True\n");
    glue::HeapView* view = monitor.session()->Peek<glue::HeapView>();
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->engine().lanes().count(),
              threads == 0 ? heap::Lanes::ForMachine().count() : threads);
    EXPECT_TRUE(monitor.Stop().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Lanes, LabelPartsTest,
                         ::testing::Values(heap::Lanes(1), heap::Lanes(2, 97),
                                           heap::Lanes(3, 1000)),
                         [](const auto& info) {
                           return "lanes" + std::to_string(info.param.count()) +
                                  "_grain" + std::to_string(info.param.grain());
                         });

}  // namespace
}  // namespace annex
