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
//   Rcs, Via                       live members and the heap graph's
//                                  reverse edges (re-walk)
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

// One of Heapy's equivalence relations, or an '&' combination of them.
class Classifier {
 public:
  enum Part { kClodo, kType, kSize, kModule, kId, kUnity, kRcs, kVia, kProd };

  Classifier() : parts_{kClodo} {}
  explicit Classifier(Part part) : parts_{part} {}

  // "Clodo", "Type", "Size", "Module", "Id", "Unity", "Rcs", "Via", "Prod"
  // and '&' combinations ("Type&Size"); Heapy's names. InvalidArgument for
  // anything else (the message lists the names), including "" (Unity has
  // its name), an empty part ("Type&") and a NUL character ("Type\0Size").
  static absl::StatusOr<Classifier> Parse(absl::string_view spec);

  const std::vector<Part>& parts() const { return parts_; }
  bool is(Part p) const { return parts_.size() == 1 && parts_[0] == p; }
  // "Type&Size".
  std::string Name() const;
  // The table's kind column header, as Heapy prints it ("Kind (class /
  // dict of class)", "Type", "Referrers by Kind (class / dict of class)",
  // "Type & Individual Size", ...).
  std::string Header() const;
  // Whether classifying needs live objects (a re-walk).
  bool NeedsLiveObjects() const;
  // Whether classifying needs the graph's reverse edges (Rcs, Via).
  bool NeedsReferrers() const;

  static std::string PartName(Part p);
  // A part's header alone (`in_and`: as a part of a combination).
  static std::string PartHeader(Part p, bool in_and);

  bool operator==(const Classifier& o) const { return parts_ == o.parts_; }

 private:
  std::vector<Part> parts_;
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
// `relations`: edge texts such as ".attr", "['k']"; each shown as a Python
// string literal (repr), sorted, joined by ", ".
std::string RenderVia(const std::vector<std::string>& relations, bool in_and);
constexpr const char* kUnityKind = "<Anything>";
constexpr const char* kNotModuleKind = "~module";
constexpr const char* kNoOwnerDict = "dict (no owner)";
constexpr const char* kUnknownProducer = "unknown";

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
