// Classifiers: names, headers and renderings of Heapy's kinds.
#include "glue/classifiers.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "monitor/python/version.h"

namespace annex::glue {
namespace {

constexpr const char* kClodoHeader = "Kind (class / dict of class)";

struct PartInfo {
  Classifier::Part part;
  const char* name;
};
constexpr PartInfo kParts[] = {
    {Classifier::kClodo, "Clodo"}, {Classifier::kType, "Type"},
    {Classifier::kSize, "Size"},   {Classifier::kModule, "Module"},
    {Classifier::kId, "Id"},       {Classifier::kUnity, "Unity"},
    {Classifier::kRcs, "Rcs"},     {Classifier::kVia, "Via"},
    {Classifier::kProd, "Prod"},   {Classifier::kDictOf, "Type.dictof"},
};

// Adds the static types among the values of `dict` to `table`, named by
// `prefix` + key. Where: GIL held; `dict` a dict of the annex.
void AddTypes(PyObject* dict, const std::string& prefix,
              absl::flat_hash_map<PyTypeObject*, std::string>& table) {
  // Sorted by key, later keys win, as Heapy builds its table.
  std::vector<std::pair<std::string, PyTypeObject*>> entries;
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(dict, &pos, &key, &value)) {
    if (!PyUnicode_Check(key) || !PyType_Check(value)) continue;
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(value);
    if (PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) continue;
    const char* k = PyUnicode_AsUTF8(key);
    if (k == nullptr) {
      PyErr_Clear();
      continue;
    }
    entries.emplace_back(k, type);
  }
  std::sort(entries.begin(), entries.end());
  for (auto& [k, type] : entries) table[type] = prefix + k;
}

}  // namespace

absl::StatusOr<TypeNamer> TypeNamer::Create() {
  TypeNamer namer;
  PyObject* types = PyImport_ImportModule("types");
  if (types == nullptr) {
    PyErr_Clear();
    return absl::InternalError("cannot import the annex's types module");
  }
  AddTypes(PyModule_GetDict(types), "types.", namer.table_);
  Py_DECREF(types);
  PyObject* builtins = PyEval_GetBuiltins();  // borrowed, annex's
  if (builtins != nullptr) AddTypes(builtins, "", namer.table_);
  namer.table_[&PyModule_Type] = "module";
  namer.table_[&PyFunction_Type] = "function";
  return namer;
}

std::string TypeNamer::Name(PyTypeObject* type) const {
  if (!PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) {
    auto it = table_.find(type);
    if (it != table_.end()) return it->second;
    // A static type's __module__ and __name__ come from tp_name.
    absl::string_view full = type->tp_name;
    size_t dot = full.rfind('.');
    if (dot == absl::string_view::npos) return absl::StrCat("builtins.", full);
    return std::string{full};
  }
  // A heap type: __module__ from its own dict, __name__ = ht_name.
  std::string module = "builtins";
  if (type->tp_dict != nullptr) {
    PyObject* m = PyDict_GetItemString(type->tp_dict, "__module__");
    if (m != nullptr && PyUnicode_Check(m)) {
      const char* s = PyUnicode_AsUTF8(m);
      if (s != nullptr) module = s;
    }
    PyErr_Clear();
  }
  std::string name;
  PyObject* ht_name = reinterpret_cast<PyHeapTypeObject*>(type)->ht_name;
  if (ht_name != nullptr && PyUnicode_Check(ht_name)) {
    const char* s = PyUnicode_AsUTF8(ht_name);
    if (s != nullptr) name = s;
    PyErr_Clear();
  }
  if (name.empty()) {
    absl::string_view full = type->tp_name;
    size_t dot = full.rfind('.');
    name = std::string(dot == absl::string_view::npos ? full
                                                      : full.substr(dot + 1));
  }
  return absl::StrCat(module, ".", name);
}

std::vector<std::string> MroNames(const TypeNamer& namer, PyTypeObject* type) {
  PyObject* mro = type->tp_mro;
  if (mro == nullptr || !PyTuple_Check(mro)) return {namer.Name(type)};
  std::vector<std::string> out;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); ++i) {
    PyObject* t = PyTuple_GET_ITEM(mro, i);
    if (PyType_Check(t)) {
      out.push_back(namer.Name(reinterpret_cast<PyTypeObject*>(t)));
    }
  }
  return out;
}

Classifier Classifier::Refdby(const Classifier& base) {
  if (base.is(kClodo)) return Classifier(kRcs);
  Classifier c(kRefdby);
  c.bases_[0] = std::make_shared<const Classifier>(base);
  return c;
}

Classifier Classifier::PartAt(size_t i) const {
  Classifier c(parts_[i]);
  c.bases_[0] = bases_[i];
  return c;
}

Classifier Classifier::And(const Classifier& a, const Classifier& b) {
  Classifier c = a;
  for (size_t i = 0; i < b.parts_.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < c.parts_.size(); ++j) {
      const bool same_base =
          (c.bases_[j] == nullptr) == (b.bases_[i] == nullptr) &&
          (c.bases_[j] == nullptr || *c.bases_[j] == *b.bases_[i]);
      seen |= c.parts_[j] == b.parts_[i] && same_base;
    }
    if (seen) continue;
    c.parts_.push_back(b.parts_[i]);
    c.bases_.push_back(b.bases_[i]);
  }
  return c;
}

bool Classifier::operator==(const Classifier& o) const {
  if (parts_ != o.parts_) return false;
  for (size_t i = 0; i < bases_.size(); ++i) {
    if ((bases_[i] == nullptr) != (o.bases_[i] == nullptr)) return false;
    if (bases_[i] != nullptr && !(*bases_[i] == *o.bases_[i])) return false;
  }
  return true;
}

namespace {

// One part of a spec: a name or "(A&B)", then ".refdby" any number of
// times ("Type.refdby.refdby"); "Type.dictof" is a name.
absl::StatusOr<Classifier> ParseTerm(absl::string_view s,
                                     const std::string& spec,
                                     const std::string& hint);

absl::StatusOr<Classifier> ParseAnd(absl::string_view s,
                                    const std::string& spec,
                                    const std::string& hint) {
  std::vector<absl::string_view> terms;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')') --depth;
    if (s[i] == '&' && depth == 0) {
      terms.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(s.substr(start));
  std::optional<Classifier> out;
  for (absl::string_view t : terms) {
    if (t.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "by(): '", spec, "' has an empty part (around '&'); ", hint));
    }
    absl::StatusOr<Classifier> c = ParseTerm(t, spec, hint);
    if (!c.ok()) return c.status();
    out = out.has_value() ? Classifier::And(*out, *c) : *c;
  }
  return *out;
}

absl::StatusOr<Classifier> ParseTerm(absl::string_view s,
                                     const std::string& spec,
                                     const std::string& hint) {
  constexpr absl::string_view kRefdby = ".refdby";
  int refdby = 0;
  while (absl::EndsWith(s, kRefdby) && s.size() > kRefdby.size()) {
    s.remove_suffix(kRefdby.size());
    ++refdby;
  }
  absl::StatusOr<Classifier> c;
  if (absl::StartsWith(s, "(") && absl::EndsWith(s, ")")) {
    c = ParseAnd(s.substr(1, s.size() - 2), spec, hint);
  } else {
    for (const PartInfo& p : kParts) {
      if (s == p.name) c = Classifier(p.part);
    }
    if (!c.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "by(): no such equivalence relation: '", s, "'; ", hint));
    }
  }
  if (!c.ok()) return c.status();
  for (int i = 0; i < refdby; ++i) c = Classifier::Refdby(*c);
  return c;
}

}  // namespace

absl::StatusOr<Classifier> Classifier::Parse(absl::string_view spec) {
  std::vector<std::string> known;
  for (const PartInfo& p : kParts) known.push_back(p.name);
  const std::string hint =
      absl::StrCat("known: ", absl::StrJoin(known, ", "),
                   ", X.refdby, combined with '&' (e.g. 'Type&Size', "
                   "'(Type&Size).refdby')");
  if (spec.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("by(): the name '", absl::CHexEscape(spec),
                     "' holds a NUL character; ", hint));
  }
  if (spec.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "by(): the name is empty (for one row of everything use 'Unity'); ",
        hint));
  }
  const std::string whole(spec);
  return ParseAnd(spec, whole, hint);
}

std::string Classifier::PartName(Part p) {
  for (const PartInfo& i : kParts) {
    if (i.part == p) return i.name;
  }
  if (p == kMro) return "Mro";
  return "?";
}

std::string Classifier::PartNameAt(size_t i) const {
  if (parts_[i] != kRefdby) return PartName(parts_[i]);
  const Classifier& b = *bases_[i];
  const std::string name = b.Name();
  return b.parts_.size() > 1 ? absl::StrCat("(", name, ").refdby")
                             : absl::StrCat(name, ".refdby");
}

std::string Classifier::PartHeader(Part p, bool in_and) {
  switch (p) {
    case kClodo:
      return kClodoHeader;
    case kType:
      return "Type";
    case kSize:
      return "Individual Size";
    case kModule:
      return "Module";
    case kId:
      return "Object Identity";
    case kUnity:
      return "<unclassified>";
    case kRcs:
      return in_and ? absl::StrCat("{Referrers by ", kClodoHeader, "}")
                    : absl::StrCat("Referrers by ", kClodoHeader);
    case kVia:
      return in_and ? "{Referred Via}" : "Referred Via:";
    case kProd:
      return "Producer (line of allocation)";
    case kDictOf:
      return "Dict of Type";
    case kRefdby:  // needs its base: PartHeaderAt
    case kMro:
      return "Type";
  }
  return "";
}

std::string Classifier::PartHeaderAt(size_t i, bool in_and) const {
  if (parts_[i] != kRefdby) return PartHeader(parts_[i], in_and);
  // Heapy: "Referrers by " + the base's header in the same context.
  const Classifier& b = *bases_[i];
  std::string base;
  if (b.parts_.size() == 1) {
    base = b.PartHeaderAt(0, in_and);
  } else {
    base = b.Header();
    if (in_and) base = absl::StrCat("(", base, ")");
  }
  return in_and ? absl::StrCat("{Referrers by ", base, "}")
                : absl::StrCat("Referrers by ", base);
}

std::string Classifier::Name() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < parts_.size(); ++i) names.push_back(PartNameAt(i));
  return absl::StrJoin(names, "&");
}

std::string Classifier::Header() const {
  if (parts_.size() == 1) return PartHeaderAt(0, false);
  std::vector<std::string> h;
  for (size_t i = 0; i < parts_.size(); ++i) {
    h.push_back(PartHeaderAt(i, true));
  }
  return absl::StrJoin(h, " & ");
}

bool Classifier::NeedsLiveObjects() const {
  for (Part p : parts_) {
    if (p == kModule || p == kRcs || p == kVia || p == kProd || p == kRefdby ||
        p == kMro) {
      return true;
    }
  }
  return false;
}

bool Classifier::NeedsReferrers() const {
  for (Part p : parts_) {
    if (p == kRcs || p == kVia || p == kRefdby) return true;
  }
  return false;
}

uint32_t Labels::Intern(const std::string& name,
                        absl::flat_hash_map<std::string, uint32_t>& index,
                        std::vector<std::string>& names) {
  auto [it, added] = index.emplace(name, static_cast<uint32_t>(names.size()));
  if (added) names.push_back(name);
  return it->second;
}

std::string RenderSize(uint64_t size, bool in_and) {
  char buf[32];
  std::snprintf(buf, sizeof buf, in_and ? "%llu" : "%9llu",
                static_cast<unsigned long long>(size));
  return buf;
}

std::string RenderId(uintptr_t address) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "<id 0x%llx>",
                static_cast<unsigned long long>(address));
  return buf;
}

std::string RenderRcs(std::vector<std::string> referrer_kinds, bool in_and) {
  std::sort(referrer_kinds.begin(), referrer_kinds.end());
  std::string r = absl::StrJoin(referrer_kinds, ", ");
  if (in_and) return absl::StrCat("{", r, "}");
  return r.empty() ? "<Nothing>" : r;
}

bool RcsLabelCompare(const std::string& label,
                     const std::vector<std::string>& elements, bool within) {
  // The label joins its sorted elements with ", ": an element of
  // `elements` is one of them when it stands between separators.
  const std::string sep = ", ";
  size_t found = 0, found_chars = 0;
  for (const std::string& e : elements) {
    if (label == "<Nothing>") break;
    for (size_t at = label.find(e); at != std::string::npos;
         at = label.find(e, at + 1)) {
      const size_t end = at + e.size();
      const bool starts =
          at == 0 || label.compare(at - sep.size(), sep.size(), sep) == 0;
      const bool ends =
          end == label.size() || label.compare(end, sep.size(), sep) == 0;
      if (starts && ends) {
        ++found;
        found_chars += e.size();
        break;
      }
    }
  }
  if (!within) return found == elements.size();
  // Within: the elements found tile the whole label.
  if (label == "<Nothing>" || label.empty()) return true;
  return found > 0 && found_chars + sep.size() * (found - 1) == label.size();
}

namespace {
// Python's repr of a str, for the texts edge naming produces (ASCII
// punctuation, identifiers and rendered keys): single quotes unless the
// text holds a single quote and no double quote.
std::string PyStrRepr(const std::string& s) {
  const bool single = s.find('\'') != std::string::npos;
  const bool dbl = s.find('"') != std::string::npos;
  const char q = (single && !dbl) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == '\\' || c == q) out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += q;
  return out;
}
}  // namespace

std::string RenderVia(const std::vector<std::string>& relations, bool in_and) {
  if (relations.size() == 1) {  // most members: held one way
    return in_and ? absl::StrCat("{", PyStrRepr(relations[0]), "}")
                  : PyStrRepr(relations[0]);
  }
  std::vector<std::string> r;
  r.reserve(relations.size());
  for (const std::string& s : relations) r.push_back(PyStrRepr(s));
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  std::string out = absl::StrJoin(r, ", ");
  return in_and ? absl::StrCat("{", out, "}") : out;
}

std::string RenderItemVia(int64_t index, bool in_and) {
  // "{'[" + up to 20 digits + "]'}"
  char buf[32];
  char* p = buf;
  if (in_and) *p++ = '{';
  *p++ = '\'';
  *p++ = '[';
  p = std::to_chars(p, buf + sizeof(buf), index).ptr;
  *p++ = ']';
  *p++ = '\'';
  if (in_and) *p++ = '}';
  return std::string(buf, p);
}

DictHolding DictHoldingOf(PyTypeObject* type) {
  if (PyType_HasFeature(type, Py_TPFLAGS_TYPE_SUBCLASS)) {
    return DictHolding::kTypeDict;
  }
  if (PyType_IsSubtype(type, &PyModule_Type)) return DictHolding::kModuleDict;
  if (type->tp_dictoffset != 0 ||
      PyType_HasFeature(type, Py_TPFLAGS_MANAGED_DICT)) {
    return DictHolding::kInstanceDict;
  }
  return DictHolding::kNone;
}

PyObject* OwnedDict(PyObject* obj, DictHolding holding) {
  PyObject* dict = nullptr;
  switch (holding) {
    case DictHolding::kNone:
      return nullptr;
    case DictHolding::kTypeDict:
      dict = reinterpret_cast<PyTypeObject*>(obj)->tp_dict;
      break;
    case DictHolding::kModuleDict:
      dict = PyModule_GetDict(obj);  // borrowed md_dict, no side effect
      break;
    case DictHolding::kInstanceDict:
      dict = python::ExistingInstanceDict(obj);
      break;
  }
  return dict != nullptr && Py_TYPE(dict) == &PyDict_Type ? dict : nullptr;
}

absl::flat_hash_map<uintptr_t, PyTypeObject*> DictOwners(
    const std::vector<uintptr_t>& objects) {
  // A small direct-mapped cache of each type's DictHolding.
  constexpr size_t kCache = 64;
  PyTypeObject* cache_type[kCache] = {};
  DictHolding cache_holding[kCache] = {};
  absl::flat_hash_map<uintptr_t, PyTypeObject*> owners;
  owners.reserve(objects.size() / 8);
  for (uintptr_t a : objects) {
    PyObject* obj = reinterpret_cast<PyObject*>(a);
    PyTypeObject* type = Py_TYPE(obj);
    const size_t slot = (reinterpret_cast<uintptr_t>(type) >> 4) % kCache;
    if (cache_type[slot] != type) {
      cache_type[slot] = type;
      cache_holding[slot] = DictHoldingOf(type);
    }
    PyObject* dict = OwnedDict(obj, cache_holding[slot]);
    if (dict != nullptr)
      owners.emplace(reinterpret_cast<uintptr_t>(dict), type);
  }
  return owners;
}

}  // namespace annex::glue
