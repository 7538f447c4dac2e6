// Makes Debian's Abseil synchronization visible to ThreadSanitizer.
//
// libabsl_synchronization.so is built without -fsanitize=thread, so TSan
// sees neither absl::Mutex's locking nor absl::Notification's signal (they
// use futexes and atomics inside the library, not pthreads) and reports
// every member guarded by an absl::Mutex as a race (checked with a two-
// thread counter under absl::MutexLock). This file, linked into `tsan`
// builds only, defines the out-of-line members our code calls, tells TSan
// the happens-before edge each one makes (__tsan_acquire/__tsan_release on
// the object's address) and calls Abseil's own definition, found with
// dlsym(RTLD_NEXT). The executable's definition takes precedence over the
// shared library's, which is why .bazelrc links tsan builds statically
// (--dynamic_mode=off) so that this object is part of every executable.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/dynamic_annotations.h"
#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

#define ANNEX_STR2(x) #x
#define ANNEX_STR(x) ANNEX_STR2(x)

// Abseil's own definition of a member, by its mangled name after the inline
// namespace ("_ZN4absl" "<len><inline namespace>" rest). Aborts when it is
// missing: a tsan build that silently skipped locking would lie.
void* Original(const char* rest) {
  const std::string ns = ANNEX_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  std::string name = "_ZN4absl" + std::to_string(ns.size()) + ns + rest;
  if (rest[0] == 'K') {  // a const member: "_ZNK4absl..."
    name = "_ZNK4absl" + std::to_string(ns.size()) + ns + (rest + 1);
  }
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tools/tsan/absl_sync.cc: %s not found\n",
                 name.c_str());
    std::abort();
  }
  return f;
}

template <typename F>
F Get(const char* rest) {
  return reinterpret_cast<F>(Original(rest));
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static auto f = Get<void (*)(Mutex*)>("5Mutex4LockEv");
  f(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static auto f = Get<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  bool locked = f(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static auto f = Get<void (*)(Mutex*)>("5Mutex6UnlockEv");
  __tsan_release(this);
  f(this);
}

void Mutex::ReaderLock() {
  static auto f = Get<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  f(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  static auto f = Get<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  f(this);
}

// Await releases and re-takes the mutex inside the library.
void Mutex::Await(const Condition& cond) {
  static auto f =
      Get<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  f(this, cond);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto f = Get<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met = f(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto f = Get<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  bool met = f(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

void Mutex::LockWhen(const Condition& cond) {
  static auto f = Get<void (*)(Mutex*, const Condition&)>(
      "5Mutex8LockWhenERKNS0_9ConditionE");
  f(this, cond);
  __tsan_acquire(this);
}

// Abseil evaluates a waiter's Condition inside the library with the mutex
// held, sometimes on the thread that unlocks, where TSan cannot see the
// lock; the condition's reads of guarded members would then look racy.
// They are reads only, so TSan ignores reads inside a condition.
bool Condition::Eval() const {
  static auto f = Get<bool (*)(const Condition*)>("K9Condition4EvalEv");
  ABSL_ANNOTATE_IGNORE_READS_BEGIN();
  bool met = f(this);
  ABSL_ANNOTATE_IGNORE_READS_END();
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static auto f = Get<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  f(this, mu);
  __tsan_acquire(mu);
}

void Notification::Notify() {
  static auto f = Get<void (*)(Notification*)>("12Notification6NotifyEv");
  __tsan_release(this);
  f(this);
}

void Notification::WaitForNotification() const {
  static auto f = Get<void (*)(const Notification*)>(
      "K12Notification19WaitForNotificationEv");
  f(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  static auto f = Get<bool (*)(const Notification*, absl::Duration)>(
      "K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified = f(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
