// glue::RetentionView, hp's retention surface for hosts (structured paths,
// retained size, roots), on a leak planted at a known place in the target.
// The Python surface (x.sp, get_shpaths, referrers, dominos, hp.Root, ...)
// is tested by tests/hp/test_retention.py.
#include <Python.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "glue/annex_access.h"
#include "glue/retention_view.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/child_process.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

long TargetLong(const std::string &expr) {
  PyObject *v = EvalTarget(expr);
  long r = v ? PyLong_AsLong(v) : -1;
  Py_XDECREF(v);
  return r;
}

// The leaky application of tests/hp/test_retention.py (a registry holding
// a leak, a sleeping thread of module `sleepmod` with a local, ...). Its
// threads stop when the target ends.
class HpRetentionTest : public testing::HpFixture {
 protected:
  HpRetentionTest() : HpFixture("") {}
  static void SetUpTestSuite() {
    const std::string fixture =
        testing::ReadFile(testing::Runfile("tests/hp/retention_fixture.py"));
    ASSERT_FALSE(fixture.empty());
    ASSERT_TRUE(RunTargetCode(fixture));
  }
};

// The C++ face for hosts: structured paths and retained size.
TEST_F(HpRetentionTest, HostApiGivesTypedPathsAndRetainedSize) {
  const uintptr_t leak = static_cast<uintptr_t>(
      TargetLong("id(sys.modules['leakmod'].registry['handlers'][3].cache)"));
  const uintptr_t modules =
      static_cast<uintptr_t>(TargetLong("id(sys.modules)"));
  const long leak_size = TargetLong(
      "sys.getsizeof(sys.modules['leakmod'].registry['handlers'][3].cache)"
      " + values_block(sys.modules['leakmod'].ModuleLeak)");
  glue::Session *session = monitor_.session();
  ASSERT_NE(session, nullptr);
  auto access = session->Get<glue::AnnexAccess>();
  ASSERT_TRUE(access.ok()) << access.status();
  absl::StatusOr<glue::PathsResult> paths = absl::UnknownError("not run");
  absl::StatusOr<uint64_t> retained = absl::UnknownError("not run");
  absl::StatusOr<glue::PathsResult> none = absl::UnknownError("not run");
  absl::StatusOr<glue::PathsResult> from = absl::UnknownError("not run");
  absl::StatusOr<std::vector<glue::RootEntry>> roots =
      absl::UnknownError("not run");
  const uintptr_t registry =
      static_cast<uintptr_t>(TargetLong("id(sys.modules['leakmod'].registry)"));
  ASSERT_TRUE((*access)
                  ->runtime()
                  .Run([&](const python::ThreadStates &) {
                    auto view = session->Get<glue::RetentionView>();
                    if (!view.ok()) return;
                    auto set = (*view)->Find({leak});
                    if (!set.ok() || set->count() != 1) return;
                    paths = (*view)->PathsTo(*set);
                    retained = (*view)->RetainedSize(*set);
                    auto dead = (*view)->Find({uintptr_t{8}});
                    if (dead.ok()) none = (*view)->PathsTo(*dead);
                    glue::PathsOptions options;
                    options.sources = std::vector<uintptr_t>{registry};
                    from = (*view)->PathsTo(*set, options);
                    roots = (*view)->Roots();
                  })
                  .ok());
  ASSERT_TRUE(from.ok()) << from.status();
  ASSERT_EQ(from->paths.size(), 1u);
  char start[48];
  std::snprintf(start, sizeof(start), "<dict at 0x%lx>",
                static_cast<unsigned long>(registry));
  EXPECT_EQ(from->paths[0].text, std::string(start) + "['handlers'][3].cache");
  EXPECT_EQ(from->paths[0].edges.front().from, registry);
  EXPECT_EQ(from->length, 3u);
  EXPECT_EQ(from->live_sources, 1u);
  ASSERT_TRUE(roots.ok()) << roots.status();
  ASSERT_GE(roots->size(), 3u);
  EXPECT_EQ((*roots)[0].name, "sys.modules");
  EXPECT_EQ((*roots)[0].address, modules);
  EXPECT_EQ((*roots)[0].use, heap::RootUse::kStart);
  // The sleeping thread's frame: its globals are reached through the
  // module, its local is a start.
  const std::string frame =
      "thread " +
      std::to_string(TargetLong("sys.modules['sleepmod'].thread.ident")) +
      " frame 0";
  int globals = 0, locals = 0;
  for (const glue::RootEntry &e : *roots) {
    if (e.name != frame) continue;
    if (e.edge == ".f_globals") {
      ++globals;
      EXPECT_EQ(e.use, heap::RootUse::kAlias);
      EXPECT_EQ(e.alias, "%R.sys.modules['sleepmod'].__dict__");
    }
    if (e.edge == ".f_locals['x']") {
      ++locals;
      EXPECT_EQ(e.use, heap::RootUse::kStart);
      EXPECT_EQ(e.kind, "sleepmod.SleepLocal");
    }
  }
  EXPECT_EQ(globals, 1);
  EXPECT_EQ(locals, 1);
  ASSERT_TRUE(paths.ok()) << paths.status();
  ASSERT_EQ(paths->paths.size(), 1u);
  EXPECT_EQ(paths->num_paths, 1u);
  EXPECT_EQ(paths->length, 6u);
  const glue::RetentionPath &p = paths->paths[0];
  EXPECT_EQ(p.root_name, "sys.modules");
  EXPECT_EQ(p.text,
            "%R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache");
  using heap::EdgeKind;
  const std::vector<std::pair<EdgeKind, std::string>> expected = {
      {EdgeKind::kDictValue, "['leakmod']"},
      {EdgeKind::kDict, ".__dict__"},
      {EdgeKind::kDictValue, "['registry']"},
      {EdgeKind::kDictValue, "['handlers']"},
      {EdgeKind::kIndex, "[3]"},
      {EdgeKind::kAttribute, ".cache"}};
  ASSERT_EQ(p.edges.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(p.edges[i].kind, expected[i].first) << i;
    EXPECT_EQ(p.edges[i].label, expected[i].second) << i;
    if (i > 0) {
      EXPECT_EQ(p.edges[i].from, p.edges[i - 1].to) << i;
    }
  }
  EXPECT_EQ(p.edges.back().name, "cache");
  EXPECT_EQ(p.edges.front().from, modules);
  EXPECT_EQ(p.edges.back().to, leak);
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_EQ(*retained, static_cast<uint64_t>(leak_size));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->live_members, 0u);
  EXPECT_TRUE(none->paths.empty());
}

}  // namespace
}  // namespace annex
