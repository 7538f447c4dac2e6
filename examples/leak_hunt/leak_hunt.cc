// A C++ host whose hosted Python service leaks, and the hunt for the leak
// with Annex. See README.md for the walkthrough.
//
//   leak_hunt                 serve traffic, then hunt the leak and print
//                             every question and answer
//   leak_hunt --serve SECS    serve traffic for SECS seconds with the
//                             console on, for `annex attach PID`
//
// The service ("shop", Python shipped inside the host) answers price
// requests. Each handler memoizes quotes in a dict keyed by the whole
// request, request id included, and nothing ever evicts them: a cache with
// no eviction, reached through a registry of handlers. The host's C++ loop
// plays the traffic; the hunt is what a developer would type at the
// console, asked here through Monitor::ExecInAnnex.
#include <Python.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "monitor/monitor.h"
#include "monitor/python/embed.h"

namespace {

// The hosted service, registered as the module "shop".
constexpr char kShopSource[] = R"PY(
"""shop: prices for the C++ host's orders."""


class Quote:
    __slots__ = ("sku", "qty", "price")

    def __init__(self, sku, qty, price):
        self.sku, self.qty, self.price = sku, qty, price


class PriceHandler:
    def __init__(self, name, markup):
        self.name = name
        self.markup = markup
        self.cache = {}   # memoized quotes, never evicted

    def handle(self, request):
        key = (request["sku"], request["qty"], request["id"])
        quote = self.cache.get(key)
        if quote is None:
            base = 100 + len(request["sku"]) * 7
            quote = Quote(request["sku"], request["qty"],
                          base * request["qty"] * self.markup)
            self.cache[key] = quote
        return quote.price


registry = {"handlers": {}}


def register(name, markup):
    registry["handlers"][name] = PriceHandler(name, markup)


def handle(name, request):
    return registry["handlers"][name].handle(request)


register("retail", 1.25)
register("wholesale", 0.8)
)PY";

// The questions of the hunt, in order, with what they are for.
struct Step {
  const char* why;
  const char* code;
};

// Registers kShopSource as sys.modules['shop'] and returns its handle()
// (new reference), or null with the error printed. Where: main thread, GIL
// held.
PyObject* LoadShop() {
  PyObject* code = Py_CompileString(kShopSource, "shop.py", Py_file_input);
  if (code == nullptr) {
    PyErr_Print();
    return nullptr;
  }
  PyObject* module = PyImport_ExecCodeModule("shop", code);
  Py_DECREF(code);
  if (module == nullptr) {
    PyErr_Print();
    return nullptr;
  }
  PyObject* handle = PyObject_GetAttrString(module, "handle");
  Py_DECREF(module);
  if (handle == nullptr) PyErr_Print();
  return handle;
}

// Plays `count` requests through shop.handle, as the host's request loop
// would: request ids `first`..`first + count - 1`, alternating handlers.
// Returns false if the service raised. Where: main thread, GIL held.
bool Serve(PyObject* handle, long first, long count) {
  static constexpr const char* kSkus[] = {"tea", "cake", "scone", "jam"};
  for (long id = first; id < first + count; ++id) {
    PyObject* request = Py_BuildValue("{s:s,s:l,s:l}", "sku", kSkus[id % 4],
                                      "qty", 1 + id % 3, "id", id);
    if (request == nullptr) return false;
    PyObject* price = PyObject_CallFunction(
        handle, "sO", id % 2 == 0 ? "retail" : "wholesale", request);
    Py_DECREF(request);
    if (price == nullptr) {
      PyErr_Print();
      return false;
    }
    Py_DECREF(price);
  }
  return true;
}

// Prints `text` with every line prefixed.
void PrintPrefixed(const char* prefix, const std::string& text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::printf("%s%.*s\n", prefix, static_cast<int>(end - start),
                text.data() + start);
    start = end + 1;
  }
}

// Asks the annex `code` (one console namespace for the whole hunt) and
// prints question and answer. Where: main thread, GIL held (released while
// the annex works).
bool Ask(annex::Monitor& monitor, const Step& step) {
  if (step.why[0] != '\0') std::printf("\n# %s\n", step.why);
  PrintPrefixed(">>> ", step.code);
  std::fflush(stdout);
  absl::StatusOr<std::string> answer =
      monitor.ExecInAnnex(step.code, /*namespace_id=*/1);
  if (!answer.ok()) {
    std::fprintf(stderr, "host: annex failed: %s\n",
                 std::string{answer.status().message()}.c_str());
    return false;
  }
  std::fputs(answer->c_str(), stdout);
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long serve_seconds = -1;
  if (argc == 3 && std::strcmp(argv[1], "--serve") == 0) {
    serve_seconds = std::atol(argv[2]);
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: leak_hunt [--serve SECONDS]\n");
    return 2;
  }
  // Python as embed_minimal initializes it (this build's interpreter).
  if (absl::Status s = annex::python::InitializeEmbedded(); !s.ok()) {
    std::fprintf(stderr, "host: %s\n", std::string{s.message()}.c_str());
    return 1;
  }

  annex::Monitor monitor;
  annex::Options options;
  options.console = serve_seconds >= 0;  // `annex attach` while serving
  options.program_name = "leak_hunt (shop service)";
  if (absl::Status s = monitor.Start(options); !s.ok()) {
    std::fprintf(stderr, "host: monitor not started: %s\n",
                 std::string{s.message()}.c_str());
    Py_FinalizeEx();
    return 1;
  }
  PyObject* handle = LoadShop();
  bool ok = handle != nullptr;
  long next_id = 0;
  if (ok && serve_seconds >= 0) {
    std::printf("host: serving for %ld s; pid %d\n", serve_seconds,
                static_cast<int>(getpid()));
    std::fflush(stdout);
    const auto end =
        std::chrono::steady_clock::now() + std::chrono::seconds(serve_seconds);
    while (ok && std::chrono::steady_clock::now() < end) {
      ok = Serve(handle, next_id, 100);
      next_id += 100;
      Py_BEGIN_ALLOW_THREADS  // between requests, as a real host would
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      Py_END_ALLOW_THREADS
    }
  } else if (ok) {
    // Warm up, mark the reference point, then more traffic: whatever it
    // leaves behind is what appeared since the reference point.
    ok = Serve(handle, next_id, 1000);
    next_id += 1000;
    ok = ok && Ask(monitor, {"Traffic has warmed the service up. Mark now.",
                             "hp.setref()"});
    ok = ok && Serve(handle, next_id, 3000);
    next_id += 3000;
    std::printf("\nhost: served 3000 more requests\n");
    const Step hunt[] = {
        {"What is alive now that was not at the reference point?",
         "h = hp.heap()"},
        {"", "h"},
        {"Who holds them? The same objects, by the kinds of their referrers",
         "h.byrcs"},
        {"The quotes are held by dicts that belong to no object. Which dicts?",
         "caches = (h & hp.Type('shop.Quote')).referrers"},
        {"", "caches"},
        {"And who holds those dicts?", "caches.byrcs"},
        {"Each is held by a shop.PriceHandler: the paths from the roots",
         "caches.sp"},
        {"What clearing them would give back, in bytes", "caches.domisize"},
    };
    for (const Step& step : hunt) ok = ok && Ask(monitor, step);
  }
  Py_XDECREF(handle);
  if (absl::Status s = monitor.Stop(); !s.ok()) {
    std::fprintf(stderr, "host: monitor stop: %s\n",
                 std::string{s.message()}.c_str());
    ok = false;
  }
  if (Py_FinalizeEx() < 0) return 120;
  return ok ? 0 : 1;
}
