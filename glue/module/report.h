// The report page of files of heap records (docs/recording.md), shared by
// `annex report` (monitor/cli/report.cc) and hp.pb: python/report.py
// (embedded) reads them through the module `_annex_report`, which uses
// the bounded readers of glue/heap_record.h and prints tables with
// glue::Stat (Heapy's layouts), so nothing is parsed or printed twice.
#pragma once

#include <Python.h>

namespace annex::glue {

// report.py run as module `annex_report` in the current interpreter, with
// `_annex_report` put in that interpreter's sys.modules when missing; its
// `main(files, out, title, top)` writes the page. Returns a new reference,
// or null with a Python exception set. Where: GIL held, the interpreter
// that will run the report (the annex, or the `annex report` command's
// own).
PyObject* LoadReportPy();

}  // namespace annex::glue
