// Classifiers: Heapy's equivalence relations over sets of target objects.
// A classifier maps each member of a set to a kind; the result is a
// partition whose rows (kind, count, size) keep the identities of their
// members, so a row is again a set.
//
//   TypeNamer namer = *TypeNamer::Create();            // annex current
//   Classifier spec = *Classifier::Parse("Type&Size");
//   spec.Header();   // "Type & Individual Size"
//
// Kinds are rendered as Heapy renders them (facts from guppy3, not its
// code): types by TypeNamer ("dict", "types.CodeType", "function",
// "module", "__main__.Foo"), dicts by their owner ("dict of __main__.Foo",
// "dict of module", "dict of type", "dict (no owner)"), sizes as numbers,
// referrer kinds as "dict of module, list", referrer edges as
// "'.attr', \"['key']\"", allocation sites as "file.py:12".
//
// Which classifier needs what:
//   Type, Clodo, Size, Id, Unity   data recorded by the walk (KindedSet):
//                                  no live object is touched
//   Module, Prod                   live members (re-walk, GIL held)
//   Rcs, Via, X.refdby             live members and the heap graph's
//                                  reverse edges (re-walk)
//   Type.dictof                    recorded data (the Clodo kinds)
#pragma once

#include <Python.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "glue/packed_columns.h"

namespace annex::glue {

// Heapy's names of types: the types of the `builtins` module by their
// builtin name ("dict", "int", "ValueError"), module and function types as
// "module" / "function", the other types of the `types` module as
// "types.<Name>" ("types.CodeType", "types.FrameType"), and every other
// type as "<__module__>.<__name__>" ("__main__.Foo", "collections.deque").
// The table is built from the annex's own `builtins` and `types` modules:
// static types are shared by every interpreter of the process, so the same
// type objects name the target's objects. Reads type objects only and runs
// no Python code when naming.
class TypeNamer {
 public:
  // Where: annex thread, GIL held, annex current (imports `types` there).
  static absl::StatusOr<TypeNamer> Create();

  // Where: GIL held, any interpreter; `type` alive.
  std::string Name(PyTypeObject* type) const;

 private:
  // Static (non-heap) types only: they live as long as the process.
  absl::flat_hash_map<PyTypeObject*, std::string> table_;
};

// The names of the MRO of `type` (itself first), by `namer`. Where: GIL
// held, `type` alive; creates no Python object.
std::vector<std::string> MroNames(const TypeNamer& namer, PyTypeObject* type);

// One of Heapy's equivalence relations, or an '&' combination of them.
class Classifier {
 public:
  // kRefdby: Heapy's er.refdby, objects by the set of the kinds of their
  // referrers under a base classifier (base(i)); Clodo.refdby is kRcs.
  // kDictOf: Heapy's Type.dictof, a dict by its owner's type ("dict of
  // T", "dict (no owner)"), anything else "~dict". kMro: not offered by
  // name; the names of a member's type's MRO, one per line, for Type
  // kinds' subtype orders (kind.alt('<=')).
  enum Part {
    kClodo,
    kType,
    kSize,
    kModule,
    kId,
    kUnity,
    kRcs,
    kVia,
    kProd,
    kRefdby,
    kDictOf,
    kMro
  };

  Classifier() : parts_{kClodo}, bases_(1) {}
  explicit Classifier(Part part) : parts_{part}, bases_(1) {}

  // Heapy's er.refdby over `base` (kRcs when `base` is Clodo).
  static Classifier Refdby(const Classifier& base);
  // The parts of `a` then those of `b` not already there (er & er).
  static Classifier And(const Classifier& a, const Classifier& b);

  // "Clodo", "Type", "Size", "Module", "Id", "Unity", "Rcs", "Via", "Prod",
  // "Type.dictof", X + ".refdby" (X a name, or "(A&B)") and '&'
  // combinations ("Type&Size"); Heapy's names. InvalidArgument for
  // anything else (the message lists the names), including "" (Unity has
  // its name), an empty part ("Type&") and a NUL character ("Type\0Size").
  static absl::StatusOr<Classifier> Parse(absl::string_view spec);

  const std::vector<Part>& parts() const { return parts_; }
  // Part i alone (with its base).
  Classifier PartAt(size_t i) const;
  // The base classifier of part i (kRefdby), else null.
  const Classifier* base(size_t i) const { return bases_[i].get(); }
  bool is(Part p) const { return parts_.size() == 1 && parts_[0] == p; }
  // "Type&Size".
  std::string Name() const;
  // The table's kind column header, as Heapy prints it ("Kind (class /
  // dict of class)", "Type", "Referrers by Kind (class / dict of class)",
  // "Type & Individual Size", ...).
  std::string Header() const;
  // Whether classifying needs live objects (a re-walk).
  bool NeedsLiveObjects() const;
  // Whether classifying needs each member's referrers (Rcs, refdby, Via:
  // the graph's edges).
  bool NeedsReferrers() const;

  static std::string PartName(Part p);
  // A part's header alone (`in_and`: as a part of a combination).
  static std::string PartHeader(Part p, bool in_and);
  // Part i's name and header (with its base, for kRefdby).
  std::string PartNameAt(size_t i) const;
  std::string PartHeaderAt(size_t i, bool in_and) const;

  bool operator==(const Classifier& o) const;

 private:
  std::vector<Part> parts_;
  std::vector<std::shared_ptr<const Classifier>> bases_;  // per part
};

// Per-member labels: `of[i]` indexes `names`. Plain data, any thread.
struct Labels {
  PackedUints of;  // per member: an index into *names
  std::shared_ptr<std::vector<std::string>> names =
      std::make_shared<std::vector<std::string>>();

  // The index of `name`, appending it when new (with `index` as the map).
  static uint32_t Intern(const std::string& name,
                         absl::flat_hash_map<std::string, uint32_t>& index,
                         std::vector<std::string>& names);
};

// Heapy's renderings of single kinds (as shown in a table's kind column;
// `in_and`: as a part of a combination).
std::string RenderSize(uint64_t size, bool in_and);
std::string RenderId(uintptr_t address);
std::string RenderRcs(std::vector<std::string> referrer_kinds, bool in_and);
// Heapy's set inclusion of referrer kinds (kind.alt('<=') of Rcs and
// refdby kinds): whether the set rendered as `label` (RenderRcs, not in
// a combination) is within (`within`) or holds (!`within`) every
// element of `elements` (rendered as the base classifier renders them).
bool RcsLabelCompare(const std::string& label,
                     const std::vector<std::string>& elements, bool within);
// `relations`: edge texts such as ".attr", "['k']"; each shown as a Python
// string literal (repr), sorted, joined by ", ".
std::string RenderVia(const std::vector<std::string>& relations, bool in_and);
// RenderVia of the one text "[index]" (a list's or tuple's item: most of
// a big partition's labels), written without building that text first.
std::string RenderItemVia(int64_t index, bool in_and);

// The kinds the classifiers name themselves: Unity's one kind, Module's
// for what is no module, Clodo's for a dict no owner holds, Prod's for an
// object without a traced allocation, dictof's for what is no dict.
constexpr const char* kUnityKind = "<Anything>";
constexpr const char* kNotModuleKind = "~module";
constexpr const char* kNoOwnerDict = "dict (no owner)";
constexpr const char* kUnknownProducer = "unknown";
constexpr const char* kNotDictKind = "~dict";

// How the instances of a type hold the attribute dict they own (see
// DictOwners): decided once per type, since the subtype and flag tests are
// too slow to repeat for millions of objects.
enum class DictHolding : uint8_t {
  kNone,
  kTypeDict,
  kModuleDict,
  kInstanceDict
};
// Where: GIL held; `type` alive.
DictHolding DictHoldingOf(PyTypeObject* type);
// The exact dict `obj` owns as its attribute dict, given its type's
// `holding`, or nullptr (none, or not an exact dict). Reads the object and,
// when there is one, the dict's type pointer; creates nothing.
// Where: GIL held; `obj` alive.
PyObject* OwnedDict(PyObject* obj, DictHolding holding);

// The dict each object of `objects` owns as its attribute dict: the
// tp_dict of a type, the md_dict of a module, the existing instance dict
// of anything else (an instance whose attributes are still inline has no
// dict object, so owns none). Returns dict address -> owner's type.
// Where: GIL held since `objects` were found alive, any interpreter.
absl::flat_hash_map<uintptr_t, PyTypeObject*> DictOwners(
    const std::vector<uintptr_t>& objects);

}  // namespace annex::glue
