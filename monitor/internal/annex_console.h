// Runs console commands on the annex thread: the CommandExecutor the
// console server calls (monitor/console never touches Python).
//
// Each client session gets its own namespace dict in the annex. Python code
// runs with the annex current; its output is captured; Ctrl-C becomes a
// KeyboardInterrupt in the annex (AnnexRuntime::Interrupt). Target questions
// (`.threads`, `.stacks`, `.interrupt`, `.exec-target`) swap to the target
// only for the read or the requested action (DESIGN.md rules 4, 9).
#pragma once

#include <Python.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "glue/heap_view.h"
#include "glue/session.h"
#include "monitor/console/executor.h"
#include "monitor/python/annex_runtime.h"

namespace annex::monitor_internal {

class AnnexConsole : public console::CommandExecutor {
 public:
  // `runtime` and `session` must outlive this object; each namespace gets
  // `hp` bound to `session` (null: no hp). Where: any thread.
  AnnexConsole(python::AnnexRuntime* runtime, glue::Session* session)
      : runtime_(runtime), session_(session) {}
  ~AnnexConsole() override;

  // console::CommandExecutor. Where: the server's worker threads (blocking
  // calls queue to the annex thread) and its I/O thread (Interrupt).
  void OpenSession(uint64_t session_id) override;
  void CloseSession(uint64_t session_id) override;
  console::Reply Execute(uint64_t session_id, const console::Request& request,
                         const console::Cancellation& cancel) override;
  void Interrupt(uint64_t session_id) override;

  // Releases every session namespace. Where: annex thread, GIL held, annex
  // current (e.g. from AnnexOptions::on_stop).
  void ReleaseAll();

  // The reference point of session `session_id`'s hp (hp.setref()), or
  // null. Where: annex thread, GIL held, annex current.
  std::shared_ptr<const glue::ReferencePoint> ReferenceOf(
      uint64_t session_id) const;

 private:
  console::Reply RunPython(uint64_t session_id, const console::Request& req,
                           const python::ThreadStates& ts);
  console::Reply InterruptThread(const std::string& arg,
                                 const python::ThreadStates& ts);
  console::Reply ExecTarget(const std::string& code,
                            const python::ThreadStates& ts);
  PyObject* Namespace(uint64_t session_id);  // annex thread, GIL held

  python::AnnexRuntime* runtime_;
  glue::Session* session_;
  std::mutex mu_;
  uint64_t running_session_ = 0;  // guarded by mu_; 0 when none
  bool has_running_ = false;      // guarded by mu_
  std::map<uint64_t, PyObject*> namespaces_;  // annex objects; annex thread
  PyObject* helper_ = nullptr;  // the helper's namespace; annex thread
};

}  // namespace annex::monitor_internal
