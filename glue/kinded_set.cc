// KindedSet, the sets a HeapView answers with: tables, subsets, set
// algebra, and which members died since the set was made.
#include <algorithm>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "glue/heap_view.h"
#include "monitor/python/huge_pages.h"

namespace annex::glue {

uint64_t KindedSet::total_size() const { return sizes.Total(); }

void KindedSet::ShrinkToFit() {
  addresses.shrink_to_fit();
  kinds.shrink_to_fit();
  sizes.shrink_to_fit();
  clodo.shrink_to_fit();
  labels.of.shrink_to_fit();
}

size_t KindedSet::MemoryBytes() const {
  size_t bytes = sizeof(KindedSet) + addresses.MemoryBytes() +
                 kinds.MemoryBytes() + sizes.MemoryBytes() +
                 clodo.MemoryBytes() + labels.of.MemoryBytes();
  if (labels.names != nullptr && labels.names.use_count() == 1) {
    for (const std::string& n : *labels.names) {
      bytes += sizeof(std::string) + (n.capacity() > 15 ? n.capacity() : 0);
    }
  }
  // The identity watch (13 bytes a member on 3.11/3.12, 12 on 3.13) is
  // half as large again as the set's own vectors: charged to the set that
  // made it, not to the subsets and copies that share it.
  if (identity != nullptr && identity.use_count() == 1) {
    for (const auto& w : identity->watches) {
      if (w.use_count() == 1) bytes += w->MemoryBytes();
    }
  }
  return bytes;
}

uint32_t KindedSet::LabelOf(size_t i) const { return LabelColumn()[i]; }

const PackedUints& KindedSet::LabelColumn() const {
  if (classifier.is(Classifier::kType)) return kinds;
  if (classifier.is(Classifier::kClodo)) return clodo.empty() ? kinds : clodo;
  return labels.of;
}

const std::vector<std::string>& KindedSet::LabelNames() const {
  if (classifier.is(Classifier::kType) || classifier.is(Classifier::kClodo)) {
    return *kind_names;
  }
  return *labels.names;
}

std::vector<KindedSet::Row> KindedSet::Rows(size_t limit,
                                            size_t* all_rows) const {
  const std::vector<std::string>& names = LabelNames();
  // Tallied and ordered without the names: a partition can have a row
  // per member (byvia of a list's items), and sorting rows that carry
  // their names moved every name several times. A name is read, not
  // copied, where counts and sizes tie, and copied for the rows returned.
  // The tally is 16 bytes per label in room backed by huge pages: a Row
  // per label (56 bytes, each with an empty string) was 140 MB of fresh
  // 4 KiB pages for a list of 2.5 million members, a third of byvia.
  struct Tally {
    uint64_t size = 0;
    uint32_t count = 0;
    uint32_t label = 0;
  };
  std::vector<Tally> tally;
  python::AssignHuge(tally, names.size(), Tally{});
  // The label column LabelOf reads, chosen once for the whole set.
  const PackedUints& of = classifier.is(Classifier::kType) ? kinds
                          : classifier.is(Classifier::kClodo)
                              ? (clodo.empty() ? kinds : clodo)
                              : labels.of;
  size_t i = 0;
  of.ForEach([&](uint32_t k) {
    Tally& t = tally[k];
    t.count++;
    t.size += sizes[i++];
  });
  size_t used = 0;
  for (size_t k = 0; k < tally.size(); ++k) {
    if (tally[k].count == 0) continue;
    tally[k].label = static_cast<uint32_t>(k);
    tally[used++] = tally[k];
  }
  tally.resize(used);
  if (all_rows != nullptr) *all_rows = used;
  auto before = [&names](const Tally& a, const Tally& b) {
    if (a.size != b.size) return a.size > b.size;
    if (a.count != b.count) return a.count > b.count;
    return names[a.label] < names[b.label];
  };
  if (limit < tally.size()) {
    std::partial_sort(tally.begin(), tally.begin() + limit, tally.end(),
                      before);
    tally.resize(limit);
  } else {
    std::sort(tally.begin(), tally.end(), before);
  }
  std::vector<Row> rows;
  rows.reserve(tally.size());
  for (const Tally& t : tally) {
    rows.push_back({names[t.label], t.count, t.size, t.label});
  }
  return rows;
}

Stat KindedSet::ToStat(int64_t time_made_us) const {
  return StatOfRows(Rows(), time_made_us);
}

Stat KindedSet::StatOfRows(std::vector<Row> rows, int64_t time_made_us) const {
  Stat stat;
  stat.er = classifier.Name();
  stat.kind_header = classifier.Header();
  stat.count = static_cast<int64_t>(count());
  stat.size = static_cast<int64_t>(total_size());
  stat.time_made_us = time_made_us;
  stat.rows.reserve(rows.size());
  for (Row& r : rows) {
    stat.rows.push_back({std::move(r.kind), static_cast<int64_t>(r.count),
                         static_cast<int64_t>(r.size)});
  }
  return stat;
}

std::string KindedSet::PartitionTable(size_t max_rows) const {
  // The page shows at most max_rows + 1 rows (one more row, not a hint):
  // only those are ordered and named, the others only counted.
  size_t all_rows = 0;
  std::vector<Row> rows =
      Rows(max_rows == SIZE_MAX ? SIZE_MAX : max_rows + 1, &all_rows);
  Stat stat = StatOfRows(std::move(rows), 0);
  stat.rows_left_out = all_rows - stat.rows.size();
  return stat.Table(0, max_rows, /*label=*/true);
}

namespace {

// Appends member `i` of `from` to `to`, whose columns are those of `from`
// (its Clodo kinds and labels when `has_clodo` / `has_labels`). Pure C++.
void AppendMember(const KindedSet& from, size_t i, bool has_clodo,
                  bool has_labels, KindedSet& to) {
  to.addresses.push_back(from.addresses[i]);
  to.kinds.push_back(from.kinds[i]);
  to.sizes.push_back(from.sizes[i]);
  if (has_clodo) to.clodo.push_back(from.clodo[i]);
  if (has_labels) to.labels.of.push_back(from.labels.of[i]);
}

}  // namespace

namespace {

// The subset of `from` at `keep` (indexes or runs), column by column.
template <typename Keep>
KindedSet GatherMembers(const KindedSet& from, const Keep& keep) {
  KindedSet out;
  out.kind_names = from.kind_names;
  out.classifier = from.classifier;
  out.labels.names = from.labels.names;
  out.identity = from.identity;
  out.pruned_epoch = from.pruned_epoch;
  out.addresses = from.addresses.Gather(keep);
  out.kinds = from.kinds.Gather(keep);
  out.sizes = from.sizes.Gather(keep);
  if (!from.clodo.empty()) out.clodo = from.clodo.Gather(keep);
  if (!from.labels.of.empty()) out.labels.of = from.labels.of.Gather(keep);
  return out;
}

}  // namespace

KindedSet KindedSet::Subset(const std::vector<size_t>& keep) const {
  return GatherMembers(*this, keep);
}

KindedSet KindedSet::SubsetOfRuns(const IndexRuns& keep) const {
  // A set pruned of its few dead members is a few runs, each copied whole.
  return GatherMembers(*this, keep);
}

std::vector<KindedSet> KindedSet::SplitByLabels(
    const std::vector<uint32_t>& wanted) const {
  constexpr uint32_t kNone = UINT32_MAX;
  const PackedUints& of = LabelColumn();
  std::vector<uint32_t> slot(LabelNames().size(), kNone);
  for (size_t w = 0; w < wanted.size(); ++w) slot[wanted[w]] = w;
  // Count first, so every part is allocated once at its size.
  std::vector<size_t> counts(wanted.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (slot[of[i]] != kNone) ++counts[slot[of[i]]];
  }
  const bool has_clodo = !clodo.empty();
  const bool has_labels = !labels.of.empty();
  std::vector<KindedSet> out(wanted.size());
  for (size_t w = 0; w < wanted.size(); ++w) {
    KindedSet& part = out[w];
    part.kind_names = kind_names;
    part.classifier = classifier;
    part.labels.names = labels.names;
    part.addresses.reserve(counts[w]);
    part.kinds.reserve(counts[w]);
    part.sizes.reserve(counts[w]);
    if (has_clodo) part.clodo.reserve(counts[w]);
    if (has_labels) part.labels.of.reserve(counts[w]);
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    const uint32_t w = slot[of[i]];
    if (w == kNone) continue;
    AppendMember(*this, i, has_clodo, has_labels, out[w]);
  }
  return out;
}

KindedSet KindedSet::OfLabels(const std::vector<uint32_t>& wanted) const {
  // The label column read in order (its width decided once), each label
  // looked up in a table of the wanted ones.
  const PackedUints& of = LabelColumn();
  std::vector<uint8_t> want(LabelNames().size(), 0);
  for (uint32_t w : wanted) {
    if (w < want.size()) want[w] = 1;
  }
  std::vector<size_t> keep;  // a row can hold millions: grown in huge pages
  size_t i = 0;
  of.ForEach([&](uint32_t label) {
    if (label < want.size() && want[label] != 0) {
      python::GrowHuge(keep, 1);
      keep.push_back(i);
    }
    ++i;
  });
  return Subset(keep);
}

KindedSet KindedSet::OfKind(const std::string& kind) const {
  const std::vector<std::string>& names = LabelNames();
  std::vector<uint32_t> wanted;
  for (uint32_t k = 0; k < names.size(); ++k) {
    if (names[k] == kind) wanted.push_back(k);
  }
  return OfLabels(wanted);
}

KindedSet KindedSet::WithStoredClassifier(const Classifier& c) const {
  KindedSet out = *this;
  out.classifier = c;
  out.labels = Labels();
  if (c.is(Classifier::kType) || c.is(Classifier::kClodo)) return out;
  const bool in_and = c.parts().size() > 1;
  absl::flat_hash_map<std::string, uint32_t> index;
  out.labels.of.reserve(count());
  std::string label;
  for (size_t i = 0; i < count(); ++i) {
    label.clear();
    for (size_t p = 0; p < c.parts().size(); ++p) {
      if (p > 0) label += " & ";
      switch (c.parts()[p]) {
        case Classifier::kType:
          label += (*kind_names)[kinds[i]];
          break;
        case Classifier::kClodo:
          label += (*kind_names)[clodo.empty() ? kinds[i] : clodo[i]];
          break;
        case Classifier::kSize:
          label += RenderSize(sizes[i], in_and);
          break;
        case Classifier::kId:
          label += RenderId(addresses[i]);
          break;
        case Classifier::kDictOf: {
          // Heapy's Type.dictof: a dict by its owner (its Clodo kind),
          // anything else "~dict".
          const std::string& type = (*kind_names)[kinds[i]];
          label += type == "dict"
                       ? (*kind_names)[clodo.empty() ? kinds[i] : clodo[i]]
                       : std::string(kNotDictKind);
          break;
        }
        default:
          label += kUnityKind;
          break;
      }
    }
    out.labels.of.push_back(Labels::Intern(label, index, *out.labels.names));
  }
  return out;
}

KindedSet KindedSet::Combine(const KindedSet& a, const KindedSet& b, char op) {
  KindedSet out;
  out.identity = Identity::Merge(a.identity, b.identity);
  // Every member was the same object at the older of the two looks.
  out.pruned_epoch = a.identity == nullptr ? b.pruned_epoch
                     : b.identity == nullptr
                         ? a.pruned_epoch
                         : std::min(a.pruned_epoch, b.pruned_epoch);
  // One kind table for the result: a's names, then b's new ones.
  *out.kind_names = *a.kind_names;
  std::unordered_map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < out.kind_names->size(); ++i) {
    index[(*out.kind_names)[i]] = i;
  }
  std::vector<uint32_t> b_kind(b.kind_names->size());
  for (uint32_t i = 0; i < b.kind_names->size(); ++i) {
    auto [it, added] = index.emplace((*b.kind_names)[i], index.size());
    if (added) out.kind_names->push_back((*b.kind_names)[i]);
    b_kind[i] = it->second;
  }
  // Clodo kinds travel too (a side without them reads its type kinds).
  const bool clodo = !a.clodo.empty() || !b.clodo.empty();
  auto take_a = [&](size_t i) {
    out.addresses.push_back(a.addresses[i]);
    out.kinds.push_back(a.kinds[i]);
    out.sizes.push_back(a.sizes[i]);
    if (clodo) out.clodo.push_back(a.clodo.empty() ? a.kinds[i] : a.clodo[i]);
  };
  auto take_b = [&](size_t j) {
    out.addresses.push_back(b.addresses[j]);
    out.kinds.push_back(b_kind[b.kinds[j]]);
    out.sizes.push_back(b.sizes[j]);
    if (clodo) {
      out.clodo.push_back(b_kind[b.clodo.empty() ? b.kinds[j] : b.clodo[j]]);
    }
  };
  size_t i = 0, j = 0;
  while (i < a.count() || j < b.count()) {
    bool in_a = i < a.count(), in_b = j < b.count();
    if (in_a && in_b && a.addresses[i] == b.addresses[j]) {
      if (op == '|' || op == '&') take_a(i);
      ++i, ++j;
    } else if (in_a && (!in_b || a.addresses[i] < b.addresses[j])) {
      if (op == '|' || op == '-' || op == '^') take_a(i);
      ++i;
    } else {
      if (op == '|' || op == '^') take_b(j);
      ++j;
    }
  }
  return out;
}

bool Identity::Same(uintptr_t address) const {
  for (const auto& w : watches) {
    const int64_t i = w->Find(address);
    if (i >= 0) return w->Same(static_cast<size_t>(i));
  }
  return true;
}

std::shared_ptr<const Identity> Identity::Merge(
    const std::shared_ptr<const Identity>& a,
    const std::shared_ptr<const Identity>& b) {
  if (a == nullptr || a == b) return b == nullptr ? a : b;
  if (b == nullptr) return a;
  auto out = std::make_shared<Identity>(*a);
  for (const auto& w : b->watches) {
    if (std::find(out->watches.begin(), out->watches.end(), w) ==
        out->watches.end()) {
      out->watches.push_back(w);
    }
  }
  return out;
}

bool SameObject(const KindedSet& set, size_t i) {
  // No watched object died since every member was found the same.
  if (set.identity == nullptr ||
      set.pruned_epoch == python::DeathWatchEpoch()) {
    return true;
  }
  return set.identity->Same(set.addresses[i]);
}

namespace {

// The indexes of `set`'s members that died among those whose key is in
// `keys` (python::DeathsSince): each key stands for the members at most
// kMaxKeyDistance bytes above it. Ascending, distinct. Where: GIL held.
std::vector<size_t> DeadAmong(const KindedSet& set,
                              const std::vector<uintptr_t>& keys) {
  std::vector<size_t> dead;
  for (uintptr_t key : keys) {
    auto it = std::lower_bound(set.addresses.begin(), set.addresses.end(), key);
    for (; it != set.addresses.end() && *it - key <= python::kMaxKeyDistance;
         ++it) {
      if (!set.identity->Same(*it)) dead.push_back(it - set.addresses.begin());
    }
  }
  std::sort(dead.begin(), dead.end());
  dead.erase(std::unique(dead.begin(), dead.end()), dead.end());
  return dead;
}

}  // namespace

std::vector<size_t> DeadMembers(const KindedSet& set) {
  std::vector<size_t> dead;
  if (set.identity == nullptr || set.count() == 0 ||
      set.pruned_epoch == python::DeathWatchEpoch()) {
    return dead;
  }
  // Only members whose key saw a death since the last look can have died:
  // when the watch remembers those deaths and they are few, look at those
  // members only (a question on a kept set of a million objects then costs
  // what died, not the set's size).
  std::vector<uintptr_t> keys;
  if (python::DeathsSince(set.pruned_epoch, &keys) &&
      keys.size() < set.count() / 8) {
    return DeadAmong(set, keys);
  }
  for (size_t i = 0; i < set.count(); ++i) {
    if (!set.identity->Same(set.addresses[i])) dead.push_back(i);
  }
  return dead;
}

void PruneDead(KindedSet& set) {
  if (set.identity == nullptr || set.count() == 0) return;
  const uint64_t epoch = python::DeathWatchEpoch();
  if (set.pruned_epoch == epoch) return;
  const std::vector<size_t> dead = DeadMembers(set);
  if (!dead.empty()) {
    // The live members as the runs between the dead ones.
    IndexRuns keep;
    size_t from = 0;
    for (size_t d : dead) {
      if (d > from) keep.push_back({from, d - from});
      from = d + 1;
    }
    if (set.count() > from) keep.push_back({from, set.count() - from});
    const size_t dead_count = set.dead + dead.size();
    set = set.SubsetOfRuns(keep);
    set.dead = dead_count;
  }
  set.pruned_epoch = epoch;
}

}  // namespace annex::glue
