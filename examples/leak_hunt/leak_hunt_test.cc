// Runs examples/leak_hunt as a child process: the hunt must find the planted
// leak (quotes cached with no eviction, reached through the registry of
// handlers) with setref, heap(), byrcs, referrers and sp.
#include <string>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace annex::examples {
namespace {

using ::annex::testing::ProcessResult;
using ::annex::testing::Runfile;
using ::annex::testing::RunProcess;

constexpr char kBinary[] = "examples/leak_hunt/leak_hunt";

// The answer printed after the question `prompt` (up to the next "\n# ").
std::string AnswerTo(const std::string& out, const std::string& prompt) {
  size_t at = out.find(">>> " + prompt + "\n");
  if (at == std::string::npos) return "";
  at += prompt.size() + 5;
  size_t end = out.find("\n# ", at);
  return out.substr(at,
                    end == std::string::npos ? std::string::npos : end - at);
}

// The row of `kind` in a partition table: {count, size}, or {-1, -1}.
std::pair<long, long> Row(const std::string& table, const std::string& kind) {
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 8 && line.substr(line.size() - kind.size()) == kind &&
        line.find(" " + kind) == line.size() - kind.size() - 1) {
      return {std::stol(f[1]), std::stol(f[3])};
    }
  }
  return {-1, -1};
}

TEST(LeakHuntTest, FindsTheCacheWithNoEviction) {
  ProcessResult r = RunProcess({Runfile(kBinary)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  // Since the reference point: one quote per request served after it.
  std::string heap = AnswerTo(r.out, "h");
  EXPECT_EQ(Row(heap, "shop.Quote").first, 3000) << heap;
  EXPECT_EQ(Row(heap, "tuple").first, 3000) << heap;  // the cache keys
  // The quotes and keys hang off dicts that belong to no object.
  std::string rcs = AnswerTo(r.out, "h.byrcs");
  EXPECT_EQ(Row(rcs, "dict (no owner)").first, 6000) << rcs;
  // Exactly the two handlers' caches, held by the handlers...
  std::string caches = AnswerTo(r.out, "caches");
  EXPECT_NE(caches.find("Partition of a set of 2 objects."), std::string::npos)
      << caches;
  EXPECT_EQ(Row(caches, "dict (no owner)").first, 2) << caches;
  EXPECT_EQ(Row(AnswerTo(r.out, "caches.byrcs"), "shop.PriceHandler").first, 2)
      << r.out;
  // ...reached through the registry: exactly these two paths, in either
  // order (paths come in the order of the objects' addresses).
  std::string paths = AnswerTo(r.out, "caches.sp");
  const std::string retail =
      ": %R.sys.modules['shop'].__dict__['registry']['handlers']"
      "['retail'].cache\n";
  const std::string wholesale =
      ": %R.sys.modules['shop'].__dict__['registry']['handlers']"
      "['wholesale'].cache\n";
  EXPECT_TRUE(paths == " 0" + retail + " 1" + wholesale ||
              paths == " 0" + wholesale + " 1" + retail)
      << paths;
  // Everything the caches hold goes with them: at least the two dicts and,
  // per cached request (4000), its quote, key tuple and price.
  std::string retained = AnswerTo(r.out, "caches.domisize");
  ASSERT_FALSE(retained.empty()) << r.out;
  const long bytes = std::stol(retained);
  EXPECT_GT(bytes,
            Row(caches, "dict (no owner)").second + 4000L * (48 + 56 + 24))
      << r.out;
}

TEST(LeakHuntTest, BadArgumentsAreAUsageError) {
  ProcessResult r = RunProcess({Runfile(kBinary), "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage: leak_hunt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace annex::examples
