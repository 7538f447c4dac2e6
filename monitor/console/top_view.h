// The screen of `annex top PID` (monitor/console/cli.h, RunTop): one frame
// made from the latest heap record's partition by Clodo and the first one
// (growth since start), fitted to a terminal's size. Pure text, no I/O.
//
//   TopFrame f;
//   f.first = first_clodo;  f.now = latest_clodo;  // glue::Stat records
//   f.rows = 24;  f.columns = 80;                   // 0: not a terminal
//   std::string screen = RenderTop(f);
//
// Plain data: any thread.
#pragma once

#include <cstdint>
#include <string>

#include "glue/stat.h"

namespace annex::console {

struct TopFrame {
  // Header.
  int64_t pid = 0;
  std::string program;
  std::string python;
  int64_t frame = 1;         // 1 for the first record
  double interval_s = 2;     // time between records
  double since_start_s = 0;  // wall time from the first record to `now`
  int64_t rss_bytes = -1;    // the record's RSS (-1: unknown)
  int64_t pause_us = -1;     // the record's walk pause (-1: unknown)
  // The partitions (Clodo) of the first record and of the latest.
  glue::Stat first;
  glue::Stat now;
  bool by_growth = false;  // rows ordered by growth, else by size now
  bool keys = false;       // a terminal: show the keys line
  // The terminal's size; 0 when not a terminal (then `max_rows` rows and
  // lines of any length).
  int rows = 0;
  int columns = 0;
  int max_rows = 20;
};

// The frame's lines, each ending with '\n': a header (pid, program,
// objects and bytes now and their growth since start, RSS, the walk's
// pause), then one line per kind: count, size, growth of both since the
// first record, and the kind; as many kinds as fit `rows` (or
// `max_rows`), each line cut at `columns` characters.
std::string RenderTop(const TopFrame& frame);

}  // namespace annex::console
