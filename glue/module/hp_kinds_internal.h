// Private to hp_kinds*.cc: what the pieces of the kinds face of `hp`
// share. The pieces, by concept:
//   hp_kinds.cc             kind objects (annex.Kind) and their algebra
//                           (~k, k | k, k & k, k - k, k.alt, str, ==)
//   hp_kinds_makers.cc      the kinds' constructors: hp.Type(T),
//                           hp.Clodo(...), hp.Size(n), hp.Module(...),
//                           hp.Via(...), hp.Prod(...), hp.Id(addr),
//                           hp.Type.dictof(T) and kind.dictof, hp.Idset(...),
//                           with type names checked against the target
//   hp_kinds_classifiers.cc classifiers as objects (annex.KindFactory:
//                           hp.Type, hp.Type & hp.Size, er.refdby,
//                           hp.Type.Dict) and the classifier arguments of
//                           x.by(er)
//   hp_kinds_sokind.cc      sets of kinds (annex.SoKind, er.sokind(...)) and
//                           the refdby kinds made from them
//   hp_kinds_sets.cc        kinds applied to sets: set & kind filtering, the
//                           IdSet's classifier attributes (x.by, x.bytype,
//                           x.er, x.parts), x.kind, x[i] and ~x
// What the rest of the module uses is declared in hp_internal.h.
//
// All of it runs on the annex thread, GIL held, the annex current (kinds
// and classifier objects live in the annex), unless a function says
// otherwise.
#pragma once

#include <Python.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"
#include "glue/session.h"

namespace annex::glue::module {

// A kind is a predicate on objects, kept as a small expression tree of
// (classifier, kind name) atoms.
struct KindExpr {
  enum Op { kAtom, kNot, kAnd, kOr };
  KindExpr() = default;
  // A copy (x.alt(cmp) of an atom) holds its own reference to `members`.
  KindExpr(const KindExpr& o)
      : op(o.op),
        classifier(o.classifier),
        label(o.label),
        cmp(o.cmp),
        size(o.size),
        repr(o.repr),
        elements(o.elements),
        members(PyRef::NewRef(o.members.get())),
        a(o.a),
        b(o.b) {}
  KindExpr& operator=(const KindExpr&) = delete;

  Op op = kAtom;
  // Atom: members whose kind under `classifier` is `label`; for a Size
  // atom compared with `cmp` ("==", "!=", "<", "<=", ">", ">=") to `size`.
  Classifier classifier;
  std::string label;
  std::string cmp = "==";
  uint64_t size = 0;
  std::string repr;  // how the atom is written
  // Rcs, refdby and Via atoms: the set's elements as the base classifier
  // renders them (for the inclusion orders); a Type atom ordered '>=' or
  // '>': the names of the type's MRO.
  std::vector<std::string> elements;
  // A set as a kind (~x, x | kind): an atom whose members are those of
  // this annex.IdSet (held, so its identity watch stays), not a classifier's.
  PyRef members;  // released on the annex thread, GIL held (kinds live there)
  std::shared_ptr<const KindExpr> a, b;

  bool is_members() const { return op == kAtom && members.get() != nullptr; }

  bool is_size() const {
    return op == kAtom && !is_members() && classifier.is(Classifier::kSize);
  }
  // How the kind is written (repr(kind)); kinds compare and hash by it.
  std::string Repr() const;
  // Heapy's brief: the kind as tables show it (str(kind)).
  std::string Brief() const;
};
using Expr = std::shared_ptr<const KindExpr>;

// What a classifier object (annex.KindFactory) makes when called.
enum FactoryVariant {
  kPlain = 0,
  // hp.Type.dictof: kinds of dicts by their owner's type (Heapy's
  // ByDictOwner over Type); the classifier is Type.dictof.
  kDictOf = 1,
  // hp.Idset: Heapy's identity-set relation; partitions as Id, and called
  // it gives the set of those objects (an IdSet), as Heapy's.
  kIdset = 2,
};

// ---- hp_kinds.cc: kind objects.
// Whether `o` is an annex.Kind.
bool IsKind(PyObject* o);
// The expression of the annex.Kind `o` (unchecked).
const Expr& ExprOf(PyObject* o);
// A new annex.Kind holding `expr` (new reference), or nullptr with an
// error set.
PyObject* NewKind(Expr expr);
// The atom "kind `label` under `c`", written `repr`.
Expr Atom(Classifier c, std::string label, std::string repr);
// The members of the annex.IdSet `idset` as a kind atom (held by it).
Expr MembersAtom(PyObject* idset);
// The expression `op` over `a` (and `b`).
Expr Combine(KindExpr::Op op, Expr a, Expr b = nullptr);
// `s` as a Python str literal ('name'), for reprs and messages.
std::string Quote(const std::string& s);

// ---- hp_kinds_makers.cc: the kinds' constructors, each a new annex.Kind
// (an IdSet for MakeIdset), or nullptr with TypeError / ValueError set.
// The kind name of `arg` (a type, or a str taken as the name; with
// `check`, the text that starts the error message, a name the target's
// types have: one walk when the name is not known yet).
bool TypeName(Session* session, PyObject* arg, std::string* name,
              const char* check = nullptr);
// The kinds of classes and of their dicts, one spelling each (Heapy's
// reprs, with names for its type addresses), so that every way to make
// one gives the same kind: hp.Clodo(T) is hp.Type(T), hp.Clodo(dictof=T)
// is hp.Type(T).dictof and hp.Type.dictof(T).
Expr TypeAtom(const std::string& name);
Expr DictOfAtom(const std::string& owner);
Expr NoOwnerAtom();
// Heapy's notdict: everything that is not a dict.
Expr NotDictExpr();
// The object at `address` as a kind (Heapy's Id kind).
Expr IdAtom(uintptr_t address);
// An address given by the user (an int > 0, as id() in the target
// gives); false with TypeError set, `what` starting the message.
bool AddressArg(PyObject* arg, const char* what, uintptr_t* out);
PyObject* MakeType(Session* session, PyObject* arg);
PyObject* MakeClodo(Session* session, PyObject* args, PyObject* kwds);
PyObject* MakeSize(PyObject* arg);
PyObject* MakeModule(Session* session, PyObject* args, PyObject* kwds);
PyObject* MakeProd(PyObject* args, PyObject* kwds);
PyObject* MakeVia(PyObject* args);
// hp.Type.dictof(T): the dicts owned by an object of type T (T a type, a
// name, or a Type / Clodo kind of a class); () or hp.Nothing: dicts
// without owner; None: objects that are not dicts (Heapy's notdict).
PyObject* MakeDictOf(Session* session, PyObject* arg);
// kind.dictof (a getter of annex.Kind).
PyObject* KindDictOf(PyObject* self, void*);
// hp.Idset(ids or IdSets...): the live objects among those.
PyObject* MakeIdset(Session* session, PyObject* args);

// ---- hp_kinds_classifiers.cc: classifier objects (annex.KindFactory).
// A new annex.KindFactory for `c` (new reference), or nullptr with an
// error set.
PyObject* NewFactory(Session* session, const Classifier& c, int variant);
// The classifier of the annex.KindFactory `self` (unchecked).
const Classifier& FactoryClassifierOf(PyObject* self);
// er(...): the kind the factory `self` makes of the arguments.
PyObject* FactoryCall(PyObject* self, PyObject* args, PyObject* kwds);
// Heapy's repr of a classifier: hp.Type, hp.Clodo.refdby (hp.Rcs),
// hp.Type.refdby.refdby, (hp.Type & hp.Size), hp.Type.dictof.
std::string ErRepr(const Classifier& c);
const TypeDef& FactoryDef();

// ---- hp_kinds_sokind.cc: sets of kinds (annex.SoKind) and refdby kinds.
// The kind of base.refdby: objects whose referrers' kinds under `base`
// are exactly `labels`; `label`, when given, is the kind's label as a
// table shows it (a row's, whose elements may hold ", " themselves).
Expr RefdbyAtom(const Classifier& base, std::vector<std::string> labels,
                const std::string* label = nullptr);
// hp.X.refdby(...) (and hp.Rcs(...)): the kind of objects whose referrers'
// kinds under X are exactly those given: SoKinds of X, kinds of X, or
// (X Clodo or Type) types or their names.
PyObject* MakeRefdby(Session* session, const Classifier& base, PyObject* args);
// er.sokind(...) (a method of annex.KindFactory).
PyObject* FactorySokind(PyObject* self, PyObject* args, PyObject* kwds);
const TypeDef& SoKindDef();

// ---- hp_kinds_sets.cc: kinds applied to sets.
// Calls `each` once for every type the target's heap has now (the types
// of the objects reached and the type objects reached), in one walk,
// until it returns true. `each` runs inside the question, with the target
// current: it must make no Python object and set no error (read the types
// and keep C++ data). Where: annex thread, GIL held, annex current,
// outside a question.
absl::Status ForEachHeapType(HeapView* view,
                             const std::function<bool(PyTypeObject*)>& each);

}  // namespace annex::glue::module
