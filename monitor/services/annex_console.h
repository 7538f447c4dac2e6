// Runs console commands on the annex thread: the CommandExecutor the
// console server calls (monitor/console never touches Python).
//
// Each client id (a console client's, or a host namespace's: the Monitor's
// own AnnexConsole serves ExecInAnnex(code, namespace_id) with the namespace
// id as client id) gets its own namespace dict in the annex. Python code
// runs with the annex current; its output is captured; Ctrl-C becomes a
// KeyboardInterrupt in the annex (AnnexRuntime::Interrupt). Target questions
// (`.threads`, `.stacks`, `.interrupt`, `.exec-target`) swap to the target
// only for the read or the requested action (docs/design.md rules 4, 9).
#pragma once

#include <Python.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "glue/heap_view.h"
#include "glue/session.h"
#include "monitor/console/executor.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/watchdog/internal/stack_dump.h"

namespace annex::services {

// Who holds the GIL the target shares, read without it: "the GIL is held by
// target thread N (native T, "name", Python "pyname"), innermost first:" and
// up to three frames, or that it is free / held by the annex. Python names
// come from `python_names` (copied earlier with the GIL; a thread not in
// it shows its OS name only). Ends with a newline; "" when Python is
// finalizing. Where: any thread; better without the GIL.
std::string DescribeGilHolder(
    python::AnnexRuntime* runtime,
    const std::vector<watchdog::internal::PythonThreadName>& python_names = {});
// The target's threads (with their stacks when `stacks`) read without the
// GIL, as the watchdog does, under a note saying who holds it. Where: as
// DescribeGilHolder.
std::string GilFreeThreads(
    python::AnnexRuntime* runtime, bool stacks,
    const std::vector<watchdog::internal::PythonThreadName>& python_names = {});

class AnnexConsole : public console::CommandExecutor {
 public:
  // `runtime` and `session` must outlive this object, and this object must
  // outlive the runtime's work (Stop the runtime first): a command whose
  // caller stopped waiting may still end on the annex thread. Each
  // namespace gets `hp` bound to `session` (null: no hp). Where: any
  // thread.
  AnnexConsole(python::AnnexRuntime* runtime, glue::Session* session)
      : runtime_(runtime), session_(session) {}
  ~AnnexConsole() override;

  // console::CommandExecutor. Where: the server's worker threads (blocking
  // calls queue to the annex thread) and its I/O thread (Interrupt).
  // Execute returns at most ~1 s after `cancel` even when the annex cannot
  // run (a target thread keeps the GIL): kInterrupted, naming the GIL's
  // holder. `.threads` / `.stacks` answer from GIL-free reads when the
  // annex does not answer within 300 ms.
  void OpenClient(uint64_t client_id) override;
  void CloseClient(uint64_t client_id) override;
  console::Reply Execute(uint64_t client_id, const console::Request& request,
                         const console::Cancellation& cancel) override;
  void Interrupt(uint64_t client_id) ABSL_LOCKS_EXCLUDED(mu_) override;
  // Execute() that also gives up at `deadline` (the running command is
  // interrupted, as by a Ctrl-C; the reply says it timed out).
  console::Reply ExecuteWithin(uint64_t client_id,
                               const console::Request& request,
                               const console::Cancellation& cancel,
                               absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(flight_mu_, mu_);
  // CloseClient() without waiting for the annex (the namespace is released
  // when the annex gets to it). Where: any thread.
  void CloseClientLater(uint64_t client_id);

  // Releases every client's namespace. Where: annex thread, GIL held, annex
  // current (e.g. from AnnexOptions::on_stop).
  void ReleaseAll();

  // From now on every command is refused (status kRefused, `why` as its
  // error) and clients no longer reach the annex; interrupts the commands
  // in flight and waits until they have returned (about a second at most,
  // as after a cancel). For the program's exit: the console stays up and
  // answers clearly while Python finalizes, and the runtime can stop with
  // no command left on it. Idempotent. Where: any thread but the annex's,
  // without the GIL (a command in flight needs it to end).
  void Refuse(std::string why) ABSL_LOCKS_EXCLUDED(flight_mu_);

  // The reference point of client `client_id`'s hp (hp.setref()), or
  // null. Where: annex thread, GIL held, annex current.
  std::shared_ptr<const glue::ReferencePoint> ReferenceOf(
      uint64_t client_id) const;

 private:
  console::Reply RunPython(uint64_t client_id, const console::Request& req,
                           const python::ThreadStates& ts);
  console::Reply InterruptThread(const std::string& arg,
                                 const python::ThreadStates& ts);
  console::Reply ExecTarget(const std::string& code,
                            const python::ThreadStates& ts);
  PyObject* Namespace(uint64_t client_id);  // annex thread, GIL held
  // Copies the target's Python thread names (threading's, as the watchdog
  // copies them: watchdog::internal::CopyPythonThreadNames, with the target
  // swapped in for the copy) for the GIL-free answers of .threads and
  // .stacks, which cannot read them. Where: annex thread, GIL held, annex
  // current.
  void RememberThreadNames(const python::ThreadStates& ts)
      ABSL_LOCKS_EXCLUDED(names_mu_);
  std::vector<watchdog::internal::PythonThreadName> ThreadNames()
      ABSL_LOCKS_EXCLUDED(names_mu_);
  // Releases one client's namespace, collects the annex's reference
  // cycles and drops the identity watches that went with them. Where:
  // annex thread, GIL held, annex current.
  void DropNamespace(uint64_t client_id);

  python::AnnexRuntime* runtime_;
  glue::Session* session_;
  // Refuse(): set once; commands read it without a lock to stop.
  std::atomic<bool> refusing_{false};
  absl::Mutex flight_mu_;
  int in_flight_ ABSL_GUARDED_BY(flight_mu_) = 0;
  std::string refusal_ ABSL_GUARDED_BY(flight_mu_);
  absl::Mutex mu_;
  uint64_t running_client_ ABSL_GUARDED_BY(mu_) = 0;  // 0 when none
  bool has_running_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, PyObject*> namespaces_;  // annex objects; annex thread
  // Python thread names as the last command that held the GIL saw them.
  absl::Mutex names_mu_;
  std::vector<watchdog::internal::PythonThreadName> python_names_
      ABSL_GUARDED_BY(names_mu_);
  // The namespace console_repl.py (the REPL semantics, run()) ran in;
  // annex thread.
  PyObject* helper_ = nullptr;
};

}  // namespace annex::services
