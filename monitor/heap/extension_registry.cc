// The per-engine table of extension size and traverse functions.
#include "monitor/heap/extension_registry.h"

namespace annex::heap {

absl::Status ExtensionRegistry::Register(PyTypeObject* type,
                                         const ExtensionFunctions& functions) {
  if (type == nullptr) return absl::InvalidArgumentError("null type");
  if (!functions.size && !functions.traverse) {
    return absl::InvalidArgumentError("neither size nor traverse given");
  }
  if (!entries_.emplace(type, functions).second) {
    return absl::AlreadyExistsError("type already registered");
  }
  ++generation_;
  return absl::OkStatus();
}

absl::Status ExtensionRegistry::Unregister(PyTypeObject* type) {
  if (entries_.erase(type) == 0) return absl::NotFoundError("not registered");
  ++generation_;
  return absl::OkStatus();
}

const ExtensionFunctions* ExtensionRegistry::Find(PyTypeObject* type) const {
  for (PyTypeObject* t = type; t != nullptr; t = t->tp_base) {
    auto it = entries_.find(t);
    if (it != entries_.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace annex::heap
