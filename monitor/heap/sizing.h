// How the heap engine sizes an object (docs/hp.md "Sizes").
#pragma once

namespace annex::heap {

enum class Sizing {
  // The default: sys.getsizeof(obj) plus the attribute values that
  // sys.getsizeof leaves out, read in place without creating anything
  // (3.11/3.12: the values block allocated apart while the instance has no
  // __dict__ object; 3.13: the inline values area allocated with the
  // object; python::InlineValuesBytes).
  kExact,
  // sys.getsizeof(obj) exactly, as the target computes it (without running
  // a Python-level __sizeof__).
  kGetsizeof,
};

}  // namespace annex::heap
