// What the benchmark programs share: running setup code in the target and
// printing several runs' figures as JSON.
#pragma once

#include <string>
#include <vector>

namespace annex::bench {

// Runs `code` in the target's __main__; prints the traceback and returns
// false when it raised. Where: main thread, GIL held, target current.
bool RunInMain(const std::string& code);

// The middle value (the upper one of an even count); 0 for none.
// Where: any thread.
double Median(std::vector<double> v);

// `v` as a JSON list with `decimals` digits after the point.
// Where: any thread.
std::string JsonList(const std::vector<double>& v, int decimals);

// When `arg` is "--sizes=N,M,...", replaces `sizes` with those numbers and
// returns true; false for any other argument. Where: any thread.
bool ParseSizesFlag(const std::string& arg, std::vector<long>* sizes);

}  // namespace annex::bench
