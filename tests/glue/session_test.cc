// The glue session: lazy, once-only, dependency-aware, nothing shared.
#include "glue/session.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace annex::glue {
namespace {

struct Counter {
  static std::atomic<int>* created;  // points into the running test only
  static absl::StatusOr<std::unique_ptr<Counter>> Create(Session&) {
    if (created) ++*created;
    return std::make_unique<Counter>();
  }
  int value = 0;
};
std::atomic<int>* Counter::created = nullptr;

struct Log {
  std::vector<std::string>* events = nullptr;
};

struct Base {
  static absl::StatusOr<std::unique_ptr<Base>> Create(Session&) {
    return std::make_unique<Base>();
  }
  std::string name = "base";
};

struct Dependent {
  static absl::StatusOr<std::unique_ptr<Dependent>> Create(Session& s) {
    auto base = s.Get<Base>();
    if (!base.ok()) return base.status();
    auto d = std::make_unique<Dependent>();
    d->base = *base;
    return d;
  }
  Base* base = nullptr;
};

struct SelfLoop {
  static absl::StatusOr<std::unique_ptr<SelfLoop>> Create(Session& s) {
    auto again = s.Get<SelfLoop>();
    if (!again.ok()) return again.status();
    return std::make_unique<SelfLoop>();
  }
};

struct Failing {
  static absl::StatusOr<std::unique_ptr<Failing>> Create(Session&) {
    return absl::UnavailableError("not today");
  }
};

TEST(SessionTest, BuildsServiceOnFirstUseOnly) {
  std::atomic<int> created{0};
  Counter::created = &created;
  Session session;
  EXPECT_EQ(session.Peek<Counter>(), nullptr);
  EXPECT_EQ(session.size(), 0u);
  auto a = session.Get<Counter>();
  auto b = session.Get<Counter>();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(session.Peek<Counter>(), *a);
  Counter::created = nullptr;
}

TEST(SessionTest, ServicesFindEachOtherThroughTheSession) {
  Session session;
  auto d = session.Get<Dependent>();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->base, *session.Get<Base>());
  EXPECT_EQ(session.size(), 2u);
}

TEST(SessionTest, TwoSessionsShareNothing) {
  Session one, two;
  auto a = one.Get<Counter>();
  auto b = two.Get<Counter>();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  (*a)->value = 7;
  EXPECT_EQ((*b)->value, 0);
}

TEST(SessionTest, CycleIsAnErrorNotAHang) {
  Session session;
  auto s = session.Get<SelfLoop>();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SessionTest, FailedFactoryCanBeRetried) {
  Session session;
  EXPECT_EQ(session.Get<Failing>().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(session.size(), 0u);
  ASSERT_TRUE(session
                  .SetFactory<Failing>([](Session&) {
                    return absl::StatusOr<std::unique_ptr<Failing>>(
                        std::make_unique<Failing>());
                  })
                  .ok());
  EXPECT_TRUE(session.Get<Failing>().ok());
}

TEST(SessionTest, FactoryOverrideOnlyBeforeFirstUse) {
  Session session;
  ASSERT_TRUE(session
                  .SetFactory<Base>([](Session&) {
                    auto b = std::make_unique<Base>();
                    b->name = "custom";
                    return absl::StatusOr<std::unique_ptr<Base>>(std::move(b));
                  })
                  .ok());
  EXPECT_EQ((*session.Get<Base>())->name, "custom");
  EXPECT_EQ(session
                .SetFactory<Base>([](Session&) {
                  return absl::StatusOr<std::unique_ptr<Base>>(
                      std::make_unique<Base>());
                })
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SessionTest, ConcurrentFirstUseBuildsOnce) {
  std::atomic<int> created{0};
  Counter::created = &created;
  Session session;
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::vector<Counter*> seen(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { seen[i] = *session.Get<Counter>(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  for (Counter* c : seen) EXPECT_EQ(c, seen[0]);
  Counter::created = nullptr;
}

}  // namespace
}  // namespace annex::glue
