// The recommendation engine: picks one optimized variant under a goal and hard limits, and
// explains the pick (deciding trade-offs, why each other variant lost, what relaxing a limit
// would buy). Pure C++: the inputs are numbers measured or estimated elsewhere.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt::recommend {

enum class Goal : std::uint8_t { kBalanced, kSize, kSpeed, kAccuracy };
const char* goal_name(Goal goal);
std::optional<Goal> goal_from_name(std::string_view name);

// How much one unit of each term is worth under a goal (docs/recommend.md). A variant's score is
//   - accuracy * drop_points / tolerance + size * log2(base_size / size)
//   + latency * log2(base_latency / latency) + memory * log2(base_memory / memory)
// against the baseline variant, so it depends on that variant alone and never on which other
// variants are in the run: 2x smaller is worth `size` whatever the sizes are, and a drop of one
// tolerance (1 pt by default) costs `accuracy`.
struct GoalWeights {
  double accuracy = 0;
  double size = 0;
  double latency = 0;
  double memory = 0;
};
GoalWeights goal_weights(Goal goal);

struct DeviceEstimate {
  std::string device;
  double latency_ms = 0;
  double latency_ms_low = 0;
  double latency_ms_high = 0;
  std::int64_t peak_memory_bytes = 0;
  bool fits_in_memory = true;
  double energy_mj = 0;
};

struct Variant {
  std::string technique;   // e.g. fp32, ptq_int8, hybrid
  double accuracy = 0;     // test accuracy in percent points (0-100)
  double accuracy_ci = 0;  // half-width of its confidence interval, points
  std::int64_t size_bytes = 0;
  std::int64_t params = 0;
  std::int64_t macs = 0;
  std::vector<DeviceEstimate> estimates;
};

struct Limits {
  std::optional<double> max_accuracy_drop_points;   // absolute: baseline - variant, in points
  std::optional<double> max_accuracy_drop_percent;  // relative: drop / baseline * 100
  std::optional<std::int64_t> max_size_bytes;
  std::optional<double> max_latency_ms;          // on `device`
  std::optional<std::int64_t> max_memory_bytes;  // on `device`; the device's RAM always applies
};

struct Request {
  std::vector<Variant> variants;
  std::string baseline = "fp32";  // the reference for accuracy drop; the most accurate variant if absent
  std::string device;             // whose estimates count; empty: the first estimate of each variant
  Goal goal = Goal::kBalanced;
  Limits limits;
  // The accuracy drop (points) that costs one `accuracy` weight. A stricter drop limit replaces
  // it (a tighter limit says accuracy matters more); a looser one does not (a limit is a bound,
  // not indifference). Floored at 0.1 pt.
  double accuracy_tolerance_points = 1.0;
};

struct Violation {
  std::string limit;  // accuracy_drop_points, accuracy_drop_percent, size, latency, memory, device_ram
  double value = 0;   // the variant's value, in the limit's unit
  double bound = 0;   // the limit
  std::string text;   // "accuracy drop 1.30 pt > 1.00 pt (by 0.30 pt)"
};

// Each term's contribution to a score (they add up to it); positive is better.
struct ScoreTerms {
  double accuracy = 0;
  double size = 0;
  double latency = 0;
  double memory = 0;
};

struct RankedVariant {
  std::string technique;
  double score = 0;
  ScoreTerms terms;
  bool feasible = true;
  bool pareto = false;
  std::string dominated_by;  // empty when on the Pareto front
  std::vector<Violation> violations;
  std::string verdict;  // why it won or lost
};

struct Relaxation {
  std::string technique;  // what it unlocks
  std::string text;       // "allowing 1.30 pt instead of 1.00 pt unlocks hybrid: 2.1x faster, 3.9x smaller"
  double cost = 0;        // relative size of the relaxation (smaller is easier)
};

struct Recommendation {
  std::string technique;
  double score = 0;
  double confidence = 0;  // 0-1: from the winner's margin over the intervals and limit headroom
  bool meets_limits = true;
  std::string goal;
  GoalWeights weights;
  double accuracy_tolerance_points = 1.0;  // the tolerance actually used
  std::string baseline;                    // the reference of drops and ratios
  std::string reasoning;
  std::vector<RankedVariant> ranking;  // best first
  std::vector<std::string> pareto;
  std::vector<Relaxation> relaxations;
  std::vector<std::string> notes;
};

// Fails only on malformed input (no variants, negative sizes, NaN); never on "nothing fits".
Result<Recommendation> recommend(const Request& request);
nlohmann::json recommendation_to_json(const Recommendation& recommendation);

}  // namespace edgeopt::recommend
