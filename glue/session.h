// The glue-model session: the context that owns every service of one monitor.
//
// A service is any class with a static factory
//   static absl::StatusOr<std::unique_ptr<T>> Create(Session& session);
// It is built the first time something asks the session for it, and it finds
// the other services it needs through the session it was given, never
// through globals. Two sessions share nothing.
//
//   glue::Session session;
//   absl::StatusOr<HeapView*> heap = session.Get<HeapView>();
//
// A test or host may replace a service's factory before first use with
// SetFactory<T>(). Services are destroyed in reverse order of creation when
// the session is destroyed, so a service may use in its destructor every
// service it asked for while it was created.
//
// Thread safety: Get() may be called from any thread; each service is built
// once. A factory may ask the session for other services; asking for the
// service being built (a cycle) fails with FailedPrecondition.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace annex::glue {

class Session {
 public:
  Session() = default;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The service T, built on first use. Where: any thread; the factory runs
  // on the calling thread (with whatever Python state that thread has).
  template <typename T>
  absl::StatusOr<T*> Get() {
    absl::StatusOr<void*> s = GetErased(
        std::type_index{typeid(T)}, [this]() -> absl::StatusOr<Erased> {
          auto made = MakeFactory<T>()(*this);
          if (!made.ok()) return made.status();
          T* raw = made->release();
          return Erased{raw, [](void* p) { delete static_cast<T*>(p); }};
        });
    if (!s.ok()) return s.status();
    return static_cast<T*>(*s);
  }

  // The service T if it was built already, else nullptr; never builds.
  // Where: any thread.
  template <typename T>
  T* Peek() {
    return static_cast<T*>(PeekErased(std::type_index{typeid(T)}));
  }

  // Replaces how T is built. FailedPrecondition once T exists.
  template <typename T>
  absl::Status SetFactory(
      std::function<absl::StatusOr<std::unique_ptr<T>>(Session&)> factory) {
    ReentrantLock lock(&mu_);
    std::type_index key(typeid(T));
    if (slots_.count(key) && slots_[key].object != nullptr) {
      return absl::FailedPreconditionError(
          "the service exists already; set its factory before first use");
    }
    overrides_[key] = [factory](Session& s) -> absl::StatusOr<Erased> {
      auto made = factory(s);
      if (!made.ok()) return made.status();
      T* raw = made->release();
      return Erased{raw, [](void* p) { delete static_cast<T*>(p); }};
    };
    return absl::OkStatus();
  }

  // How many services exist now. Where: any thread.
  size_t size() const;

 private:
  struct Erased {
    void* object = nullptr;
    void (*deleter)(void*) = nullptr;
  };
  struct Slot {
    void* object = nullptr;
    bool building = false;
  };
  using ErasedFactory = std::function<absl::StatusOr<Erased>(Session&)>;

  // The session's lock stays a std::recursive_mutex: it is held while a
  // factory runs, and a factory asks the same session for the services it
  // needs on the same thread (GetErased again), which absl::Mutex does not
  // allow. Wrapped as a capability so that clang checks what it guards.
  class ABSL_LOCKABLE ReentrantMutex {
   public:
    void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
    void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

   private:
    std::recursive_mutex mu_;
  };
  class ABSL_SCOPED_LOCKABLE ReentrantLock {
   public:
    explicit ReentrantLock(ReentrantMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
        : mu_(mu) {
      mu_->Lock();
    }
    ~ReentrantLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
    ReentrantLock(const ReentrantLock&) = delete;
    ReentrantLock& operator=(const ReentrantLock&) = delete;

   private:
    ReentrantMutex* const mu_;
  };

  template <typename T>
  std::function<absl::StatusOr<std::unique_ptr<T>>(Session&)> MakeFactory() {
    return [](Session& s) { return T::Create(s); };
  }

  absl::StatusOr<void*> GetErased(
      std::type_index key, const std::function<absl::StatusOr<Erased>()>& make);
  void* PeekErased(std::type_index key) const;

  mutable ReentrantMutex mu_;
  std::unordered_map<std::type_index, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::type_index, ErasedFactory> overrides_
      ABSL_GUARDED_BY(mu_);
  std::vector<Erased> creation_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace annex::glue
