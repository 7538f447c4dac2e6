// Private to hp*.cc here: what the parts of the `annex` module share, so
// each concern (classifiers and kinds in hp_kinds*.cc, retention in
// hp_retention.cc, ...) lives in its own source file and registers itself
// from hp.cc's module exec. One namespace, annex::glue::module (the
// folder's), and one function per operation; the public face is hp.h's
// annex::glue.
#pragma once

#include <Python.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "glue/heap_view.h"
#include "glue/module/py_ref.h"
#include "glue/module/type_def.h"
#include "glue/session.h"
#include "glue/stat.h"

namespace annex::glue::module {

// All, unless a function says otherwise: Where: annex thread, GIL held,
// annex current.

// The one mapping from absl::Status to a Python exception, used for every
// status that crosses into Python: sets the exception and returns nullptr.
//   InvalidArgument   -> ValueError   (a bad argument or record text)
//   NotFound          -> KeyError     (a LookupError: hp.Root['name'])
//   ResourceExhausted -> MemoryError  (the annex's memory budget)
//   DeadlineExceeded  -> TimeoutError (past hp.pause_limit)
//   Cancelled         -> KeyboardInterrupt (Ctrl-C, the client went away)
//   anything else     -> RuntimeError (e.g. FailedPrecondition: no
//                        tracemalloc, the annex not running)
// The exception's text is the status's message.
PyObject* RaiseStatus(const absl::Status& status);

struct IdSetObject {
  PyObject_HEAD Session* session;
  KindedSet* set;
};

// A new annex.IdSet holding `set`, charged to the session's MemoryBudget /
// a new annex.Text (a str that prints without quotes): new references, or
// nullptr with an error set.
PyObject* NewIdSet(Session* session, KindedSet set);
PyObject* NewText(const std::string& text);
// What the `annex` module keeps in its state (PyModule_GetState): its
// types and the classes and namespace of its embedded Python, taken from
// the module once at exec, so that no run-time code looks them up by name
// (deleting or replacing annex.IdSet or sys.modules['annex'] from Python
// changes nothing here).
enum class AnnexName {
  kHp,
  kText,
  kStdlib,
  kIdSet,
  kKind,
  kKindFactory,
  kSoKind,
  kPartition,
  kPartRow,
  kStat,
  kStatRow,
  kMore,
  kStatFiles,  // stat_files.py's namespace (a dict)
  kPaths,
  kRoot,
  kReferencePattern,
  kById,
  kMappingProxy,
  kProdText,
  kCount,
};
// The object `name` of the current interpreter's `annex` module (made on
// first use): a borrowed reference, alive as long as the module, which
// sys.modules and every instance of its types hold. nullptr with an error
// set when the module cannot be made.
PyObject* AnnexObject(AnnexName name);
inline PyTypeObject* AnnexType(AnnexName name) {
  return reinterpret_cast<PyTypeObject*>(AnnexObject(name));
}
// Whether `o` is exactly of the module's type `name` (false, and no error
// set, when there is no module).
bool IsAnnexType(PyObject* o, AnnexName name);
// The session's HeapView, or nullptr with the error set.
HeapView* ViewOf(Session* session);
// The set's live part: members that died since it was made are left out
// (and counted in .dead) first. `self` must be an annex.IdSet (a slot's or
// method's self); IdSetArg checks an argument.
inline KindedSet& SetOf(PyObject* self) {
  KindedSet& set = *reinterpret_cast<IdSetObject*>(self)->set;
  PruneDead(set);
  return set;
}
// The session of an annex.IdSet (unchecked).
inline Session* IdSetSession(PyObject* self) {
  return reinterpret_cast<IdSetObject*>(self)->session;
}
// SetOf(obj) for an argument: nullptr with TypeError set when `obj` is not
// an annex.IdSet.
KindedSet* IdSetArg(PyObject* obj);

// An embedded Python file: its text and its source path.
struct EmbeddedPy {
  const char* code;
  const char* path;
};
// Runs embedded Python files in order in one namespace that sees Text (so
// a later file uses what an earlier one defines), each compiled under its
// source path so tracebacks name the .py file and line, and moves their
// classes `names` into `module`. 0, or -1 with an error set.
// Where: module exec.
int AddEmbeddedClasses(PyObject* module,
                       std::initializer_list<EmbeddedPy> files,
                       std::initializer_list<const char*> names);

// The IdSet type's attributes, each concern's in its own file; hp.cc
// makes the type from its own table and these (one table: dir(x), help(x)
// and x.doc list them all). hp_values.cc: x.brief, x.theone, x.byid,
// x.maprox, x.prod. hp_retention.cc: x.sp, x.referrers, x.rp, ...
// hp_kinds_sets.cc: x.by(er), x.bytype, ..., x.er, x.parts, x.partition.
AttributeTable ValuesAttributes();
AttributeTable RetentionAttributes();
AttributeTable KindsAttributes();

// hp_retention.cc: the classes of paths.py, refpat.py and values.py
// (annex.Paths, annex.Root, annex.ReferencePattern, annex.ById, ...)
// added to `module`. 0, or -1 with an error set. Where: module exec.
int AddRetentionClasses(PyObject* module);
// hp.Root: the target's roots as an annex.Root (new reference), or nullptr
// with an error set. Walks the heap.
PyObject* HpRoot(Session* session);

// The text of `arg`, a name given by the user (a classifier, a kind, an
// edge, a comparison): TypeError when it is not a str, UnicodeEncodeError
// (a ValueError) for lone surrogates, ValueError when it holds a NUL
// character (C would end the name there) or, unless `allow_empty`, when it
// is empty. `what` starts the message, e.g. "by()". false with the error
// set.
bool NameArg(PyObject* arg, const char* what, std::string* out,
             bool allow_empty = false);

// repr(o) as text ("?" when it fails; the error is cleared).
std::string ReprText(PyObject* o);

// Appends `item` (a new reference, or nullptr after an error) to `list`,
// releasing it; false with the error set.
bool ListAppendNew(PyObject* list, PyObject* item);

// hp_kinds*.cc: the kinds face (which file holds what:
// hp_kinds_internal.h, their private header).
// Adds annex.Kind and annex.KindFactory to the module. Returns 0, or -1
// with an exception set.
int AddKindTypes(PyObject* module);
// hp.Type, hp.Clodo, hp.Size, hp.Module, hp.Via, hp.Rcs, hp.Id, hp.Idset,
// hp.Unity, hp.Prod: classifiers as objects (new reference), or nullptr
// without an exception for other names.
PyObject* HpKindFactory(Session* session, const char* name);
// x.kind: the kind of a one-row set.
PyObject* IdSetKindOf(PyObject* self);
// Set algebra where one operand is a Kind: `x & k`, `k & x`, `x - k`.
// Py_NotImplemented when neither is one.
PyObject* KindsBinary(PyObject* a, PyObject* b, char op);
// ~x: the kind "not a member of x" (the complement within whatever set it
// selects from).
PyObject* IdSetInvert(PyObject* self);
// hp.Anything: the kind every object has (Heapy's; Unity's one kind).
PyObject* HpAnything();
// The classifier `arg` names (Heapy's er): a name such as 'Type&Size' or
// a classifier object (hp.Type, hp.Type & hp.Size). false with TypeError
// or ValueError set; `what` starts the message, e.g. "by()".
bool ErArg(PyObject* arg, const char* what, Classifier* out);
// Whether `o` is an annex.Kind (hp.Type('dict'), kind | kind, ...).
bool IsKindObject(PyObject* o);
// The members of a set of kind `kind` (an annex.Kind): a function that
// may run inside a heap question (no Python object is made or released;
// classifiers that need live objects walk again), or null with an error
// set.
using KindedSetFilter =
    std::function<absl::StatusOr<KindedSet>(const KindedSet&)>;
KindedSetFilter KindFilter(Session* session, PyObject* kind);
// x[i] / x[a:b] on the partition.
PyObject* IdSetSubscript(PyObject* self, PyObject* key);

// hp_partition.cc: x.partition (annex.Partition, annex.PartRow).
// AddPartitionTypes adds them to the module: 0, or -1 with an exception.
PyObject* IdSetPartition(PyObject* self);
int AddPartitionTypes(PyObject* module);

// hp_iso.cc: hp.iso('expr'): the target objects named by `text` (a str:
// names, .attributes and [str or int constant] subscripts, or a tuple of
// them), read in place in the target without running its code; an IdSet,
// or nullptr with ValueError saying what could not be read.
PyObject* HpIsoExpr(Session* session, PyObject* text);
// x.maprox: the objects that `suffix` (a str of .attribute and [constant]
// steps, e.g. '.__class__.__name__') reaches from each live member of
// the IdSet `idset`, read as hp.iso('expr') reads (members it does not
// apply to are left out, as Heapy's); an IdSet, or nullptr with ValueError
// / TypeError for a bad suffix.
PyObject* HpMaprox(PyObject* idset, PyObject* suffix);

// hp_stat.cc: the stats face.
// Adds annex.Stat and annex.More to the module. 0, or -1 with an exception
// set.
int AddStatTypes(PyObject* module);
// A new annex.Stat holding `stat`.
PyObject* NewStat(Stat stat);
// x.stat, x.more (the second page of x's table), x.dump(dest, mode='a'),
// x.diff(y) (x.stat - y.by(x.er).stat).
PyObject* IdSetStat(PyObject* self);
PyObject* IdSetMore(PyObject* self);
PyObject* IdSetDump(PyObject* self, PyObject* args, PyObject* kwds);
PyObject* IdSetDiff(PyObject* self, PyObject* other);
// hp.load(source, *, special=False): the next stat record of an open file
// (read line by line, the file left after it; EOFError at its end), the
// last one of a path or a dump text; hp.loadall(source, *, special=False):
// all of them, as a list. Read as a stream with StatLimits' bounds; paths
// that are not regular files only with special=True.
PyObject* HpLoad(PyObject* args, PyObject* kwds);
PyObject* HpLoadAll(PyObject* args, PyObject* kwds);

}  // namespace annex::glue::module
