// The running libpython's layout table against the headers Annex was built
// with (3.13+: _Py_DebugOffsets; earlier versions have none). Private to
// version.cc.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// 0 when the running Python's _Py_DebugOffsets (cookie, version
// `build_version_hex`, and the sizes and offsets of the structures Annex
// reads) match the headers, or on versions without the table; otherwise 1
// with what differs in `buf`. Where: any thread, GIL not needed (reads a
// constant table in _PyRuntime).
int AnnexDebugOffsetsMismatch(unsigned long build_version_hex, char* buf,
                              size_t size);

#ifdef __cplusplus
}
#endif
