#include "techniques/distillation.h"
#include "techniques/hybrid.h"
#include "techniques/prune_structured.h"
#include "techniques/prune_unstructured.h"
#include "techniques/ptq_int8.h"
#include "techniques/qat_int8.h"
#include "techniques/ptq_int4.h"
#include "techniques/technique.h"

namespace edgeopt::techniques {

const std::vector<const Technique*>& registry() {
  // The one place techniques are registered; no self-registering globals.
  static const PtqInt8 ptq_int8;
  static const PtqInt4 ptq_int4;
  static const PruneUnstructured prune_unstructured;
  static const PruneStructured prune_structured;
  static const QatInt8 qat_int8;
  static const Distillation distillation;
  static const Hybrid hybrid;
  static const Hybrid hybrid_int4(HybridOptions{.int4 = true});
  static const std::vector<const Technique*> all{&ptq_int8, &ptq_int4,     &prune_unstructured, &prune_structured,
                                                 &qat_int8, &distillation, &hybrid,             &hybrid_int4};
  return all;
}

const Technique* find_technique(std::string_view id) {
  for (const Technique* t : registry()) {
    if (t->id() == id) return t;
  }
  return nullptr;
}

}  // namespace edgeopt::techniques
