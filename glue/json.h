// JSON text for the heap records' writers (heap_record, retainers,
// growth_paths): strings only; the writers build the rest with StrAppend.
//
//   std::string out = "{\"kind\":";
//   AppendJsonString(&out, kind);
//
// Pure C++, any thread.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace annex::glue {

// `s` as a JSON string, quotes included. Bytes from 0x80 up pass through
// (kinds and paths are UTF-8); control characters are escaped.
void AppendJsonString(std::string* out, absl::string_view s);

}  // namespace annex::glue
