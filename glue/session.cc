// The glue-model session context.
#include "glue/session.h"

namespace annex::glue {

Session::~Session() {
  // Reverse order of creation: a service outlives nothing it depends on.
  for (auto it = creation_order_.rbegin(); it != creation_order_.rend(); ++it) {
    it->deleter(it->object);
  }
}

size_t Session::size() const {
  ReentrantLock lock(&mu_);
  return creation_order_.size();
}

void* Session::PeekErased(std::type_index key) const {
  ReentrantLock lock(&mu_);
  auto it = slots_.find(key);
  return it == slots_.end() ? nullptr : it->second.object;
}

absl::StatusOr<void*> Session::GetErased(
    std::type_index key, const std::function<absl::StatusOr<Erased>()>& make) {
  // The recursive mutex is held while a factory runs, so a service is built
  // exactly once and factories may ask for the services they need.
  ReentrantLock lock(&mu_);
  Slot& slot = slots_[key];
  if (slot.object != nullptr) return slot.object;
  if (slot.building) {
    return absl::FailedPreconditionError(
        "service dependency cycle: a service asked for itself while being "
        "built");
  }
  slot.building = true;
  auto over = overrides_.find(key);
  absl::StatusOr<Erased> made =
      over != overrides_.end() ? over->second(*this) : make();
  Slot& again = slots_[key];  // rehashing may have moved the slot
  again.building = false;
  if (!made.ok()) return made.status();
  again.object = made->object;
  creation_order_.push_back(*made);
  return again.object;
}

}  // namespace annex::glue
