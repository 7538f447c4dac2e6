// HTTP for end-to-end tests of the metrics endpoint and Prometheus: a GET
// over a plain socket, a free loopback port to serve on, and one sample of
// a Prometheus text exposition.
#pragma once

#include <string>

namespace annex::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound, then
// released); -1 when none could be bound. Where: any thread.
int FreeLoopbackPort();

// GET `path` from 127.0.0.1:`port` over a plain socket (HTTP/1.0); returns
// the body of a 200 answer, or "" on any error. Where: any thread; releases
// the GIL while it waits if the caller holds it (a host thread that held
// it while it waited on a socket would read as a stuck main thread to the
// watchdog under load).
std::string HttpGet(int port, const std::string& path);

// The value of the sample `name_and_labels` (e.g.
// `annex_python_objects{source="heap_engine"}`) in a Prometheus text
// exposition, or -1 when absent. Where: any thread.
double MetricValue(const std::string& exposition,
                   const std::string& name_and_labels);

}  // namespace annex::testing
