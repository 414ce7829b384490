#include "techniques/prune_unstructured.h"
#include "techniques/ptq_int4.h"
#include "techniques/technique.h"

namespace edgeopt::techniques {

const std::vector<const Technique*>& registry() {
  // The one place techniques are registered; no self-registering globals.
  static const PtqInt4 ptq_int4;
  static const PruneUnstructured prune_unstructured;
  static const std::vector<const Technique*> all{&ptq_int4, &prune_unstructured};
  return all;
}

const Technique* find_technique(std::string_view id) {
  for (const Technique* t : registry()) {
    if (t->id() == id) return t;
  }
  return nullptr;
}

}  // namespace edgeopt::techniques
