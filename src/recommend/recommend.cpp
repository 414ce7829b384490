#include "recommend/recommend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace edgeopt::recommend {
namespace {

using nlohmann::json;

std::string fmt(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

std::string mb(double bytes) { return fmt("%.2f MB", bytes / 1e6); }

// The metrics of one variant on the chosen device.
struct Metrics {
  const Variant* v = nullptr;
  double accuracy = 0;
  double ci = 0;
  double size = 0;
  bool has_latency = false;
  double latency = 0, latency_low = 0, latency_high = 0;
  double memory = 0;
  bool fits = true;
  double drop_points = 0;
  double drop_percent = 0;
  bool has_memory = false;
  double score = 0;
  ScoreTerms terms;
  double score_low = 0, score_high = 0;  // pessimistic / optimistic within the intervals
  bool feasible = true;
  std::vector<Violation> violations;
  std::string dominated_by;
};

const DeviceEstimate* pick_estimate(const Variant& v, const std::string& device) {
  for (const auto& e : v.estimates)
    if (device.empty() || e.device == device) return &e;
  return nullptr;
}

void check_input(const Request& r) {
  if (r.variants.empty()) fail(ErrorCode::kInvalidArgument, "no variants to compare", "run at least one technique");
  for (const auto& v : r.variants) {
    const std::string who = "variant '" + v.technique + "'";
    if (v.technique.empty()) fail(ErrorCode::kInvalidArgument, "a variant has no technique id");
    if (!std::isfinite(v.accuracy) || v.accuracy < 0 || v.accuracy > 100)
      fail(ErrorCode::kInvalidArgument, who + ": accuracy must be in 0-100 points");
    if (!std::isfinite(v.accuracy_ci) || v.accuracy_ci < 0)
      fail(ErrorCode::kInvalidArgument, who + ": accuracy_ci must be >= 0");
    if (v.size_bytes <= 0) fail(ErrorCode::kInvalidArgument, who + ": size_bytes must be positive");
    for (const auto& e : v.estimates) {
      if (!std::isfinite(e.latency_ms) || e.latency_ms <= 0)
        fail(ErrorCode::kInvalidArgument, who + ": latency on " + e.device + " must be positive");
    }
  }
  const auto positive = [](auto opt) { return !opt || (std::isfinite(static_cast<double>(*opt)) && *opt >= 0); };
  if (!positive(r.limits.max_accuracy_drop_points) || !positive(r.limits.max_accuracy_drop_percent) ||
      !positive(r.limits.max_size_bytes) || !positive(r.limits.max_latency_ms) ||
      !positive(r.limits.max_memory_bytes)) {
    fail(ErrorCode::kInvalidArgument, "limits must be non-negative numbers");
  }
}

// No worse on accuracy, size, latency and memory (those both have), better on at least one.
bool dominates(const Metrics& a, const Metrics& b) {
  const bool lat = a.has_latency && b.has_latency;
  const bool mem = a.has_memory && b.has_memory;
  const bool ge = a.accuracy >= b.accuracy && a.size <= b.size && (!lat || a.latency <= b.latency) &&
                  (!mem || a.memory <= b.memory);
  const bool gt =
      a.accuracy > b.accuracy || a.size < b.size || (lat && a.latency < b.latency) || (mem && a.memory < b.memory);
  return ge && gt;
}

// Scores closer than this are a tie (they are sums of logs and ratios of measured numbers).
constexpr double kScoreTie = 1e-9;

// Better first: score, then the tie-breaks (higher accuracy, smaller size, lower latency, lower
// memory, then the technique name) so the order never depends on the input order.
bool better(const Metrics& a, const Metrics& b) {
  if (std::fabs(a.score - b.score) > kScoreTie) return a.score > b.score;
  if (a.accuracy != b.accuracy) return a.accuracy > b.accuracy;
  if (a.size != b.size) return a.size < b.size;
  if (a.latency != b.latency) return a.latency < b.latency;
  if (a.memory != b.memory) return a.memory < b.memory;
  return a.v->technique < b.v->technique;
}

std::string ratio_text(double winner, double other, const char* faster, const char* slower) {
  if (winner <= 0 || other <= 0) return {};
  const double r = other / winner;
  if (r >= 1.05) return fmt("%.1fx ", r) + faster;
  if (r <= 1 / 1.05) return fmt("%.1fx ", 1 / r) + slower;
  return {};
}

// How `a` compares with `b`: "2.1x faster, 3.9x smaller, 0.4 pt less accurate".
std::string compare(const Metrics& a, const Metrics& b) {
  std::vector<std::string> parts;
  if (a.has_latency && b.has_latency) {
    if (auto t = ratio_text(a.latency, b.latency, "faster (estimated)", "slower (estimated)"); !t.empty())
      parts.push_back(t);
  }
  if (auto t = ratio_text(a.size, b.size, "smaller", "larger"); !t.empty()) parts.push_back(t);
  const double d = a.accuracy - b.accuracy;
  if (std::fabs(d) >= 0.05)
    parts.push_back(fmt("%.1f pt ", std::fabs(d)) + (d > 0 ? "more accurate" : "less accurate"));
  if (parts.empty()) return "practically identical";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// The terms that decide between `a` and `b`, largest first: "size +0.99 (3.9x smaller), accuracy
// -0.85 (0.8 pt less accurate)", each signed from a's side.
std::string deciding_terms(const Metrics& a, const Metrics& b) {
  struct Term {
    const char* name;
    double diff;
    std::string what;
  };
  std::vector<Term> terms;
  const double dacc = a.accuracy - b.accuracy;
  terms.push_back({"accuracy", a.terms.accuracy - b.terms.accuracy,
                   fmt("%.2f pt ", std::fabs(dacc)) + (dacc >= 0 ? "more accurate" : "less accurate")});
  terms.push_back({"size", a.terms.size - b.terms.size, ratio_text(a.size, b.size, "smaller", "larger")});
  if (a.has_latency && b.has_latency)
    terms.push_back(
        {"latency", a.terms.latency - b.terms.latency, ratio_text(a.latency, b.latency, "faster", "slower")});
  if (a.has_memory && b.has_memory)
    terms.push_back(
        {"memory", a.terms.memory - b.terms.memory, ratio_text(a.memory, b.memory, "less memory", "more memory")});
  std::stable_sort(terms.begin(), terms.end(),
                   [](const Term& x, const Term& y) { return std::fabs(x.diff) > std::fabs(y.diff); });
  std::string out;
  for (const auto& t : terms) {
    if (std::fabs(t.diff) < 0.005) continue;
    out += (out.empty() ? "" : ", ") + std::string(t.name) + fmt(" %+.2f", t.diff);
    if (!t.what.empty()) out += " (" + t.what + ")";
  }
  return out.empty() ? "no term differs" : out;
}

Recommendation run(const Request& r) {
  check_input(r);
  Recommendation rec;
  rec.goal = goal_name(r.goal);
  rec.weights = goal_weights(r.goal);

  std::vector<Metrics> m(r.variants.size());
  const Variant* baseline = nullptr;
  for (const auto& v : r.variants)
    if (v.technique == r.baseline) baseline = &v;
  if (!baseline) {
    baseline = &*std::max_element(r.variants.begin(), r.variants.end(),
                                  [](const Variant& a, const Variant& b) { return a.accuracy < b.accuracy; });
    rec.notes.push_back("no '" + r.baseline + "' variant: accuracy drops are measured from the most accurate one, " +
                        baseline->technique);
  }
  bool all_latency = true;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const Variant& v = r.variants[i];
    Metrics& x = m[i];
    x.v = &v;
    x.accuracy = v.accuracy;
    x.ci = v.accuracy_ci;
    x.size = static_cast<double>(v.size_bytes);
    if (const auto* e = pick_estimate(v, r.device)) {
      x.has_latency = true;
      x.latency = e->latency_ms;
      x.latency_low = e->latency_ms_low > 0 ? e->latency_ms_low : e->latency_ms;
      x.latency_high = e->latency_ms_high > 0 ? e->latency_ms_high : e->latency_ms;
      x.memory = static_cast<double>(e->peak_memory_bytes);
      x.has_memory = e->peak_memory_bytes > 0;
      x.fits = e->fits_in_memory;
    } else {
      all_latency = false;
    }
    x.drop_points = baseline->accuracy - v.accuracy;
    x.drop_percent = baseline->accuracy > 0 ? 100 * x.drop_points / baseline->accuracy : 0;
  }
  bool all_memory = all_latency;
  for (const auto& x : m) all_memory = all_memory && x.has_memory;
  for (auto& x : m) x.has_memory = all_memory;
  if (!all_latency) {
    for (auto& x : m) x.has_latency = false;
    rec.notes.push_back(r.device.empty() ? std::string("no device estimates: latency is left out of the score")
                                         : "not every variant has an estimate on " + r.device +
                                               ": latency is left out of the score");
  }

  // Hard limits.
  const Limits& L = r.limits;
  for (auto& x : m) {
    auto add = [&](const char* limit, double value, double bound, const std::string& text) {
      x.violations.push_back({limit, value, bound, text});
    };
    if (L.max_accuracy_drop_points && x.drop_points > *L.max_accuracy_drop_points + 1e-9) {
      add("accuracy_drop_points", x.drop_points, *L.max_accuracy_drop_points,
          fmt("accuracy drop %.2f pt", x.drop_points) + fmt(" > %.2f pt", *L.max_accuracy_drop_points) +
              fmt(" (by %.2f pt)", x.drop_points - *L.max_accuracy_drop_points));
    }
    if (L.max_accuracy_drop_percent && x.drop_percent > *L.max_accuracy_drop_percent + 1e-9) {
      add("accuracy_drop_percent", x.drop_percent, *L.max_accuracy_drop_percent,
          fmt("relative accuracy drop %.2f %%", x.drop_percent) + fmt(" > %.2f %%", *L.max_accuracy_drop_percent) +
              fmt(" (by %.2f %%)", x.drop_percent - *L.max_accuracy_drop_percent));
    }
    if (L.max_size_bytes && x.size > static_cast<double>(*L.max_size_bytes)) {
      add("size", x.size, static_cast<double>(*L.max_size_bytes),
          "size " + mb(x.size) + " > " + mb(static_cast<double>(*L.max_size_bytes)) + " (by " +
              mb(x.size - static_cast<double>(*L.max_size_bytes)) + ")");
    }
    if (L.max_latency_ms && x.has_latency && x.latency > *L.max_latency_ms) {
      add("latency", x.latency, *L.max_latency_ms,
          fmt("latency %.2f ms", x.latency) + fmt(" > %.2f ms", *L.max_latency_ms) +
              fmt(" (by %.2f ms)", x.latency - *L.max_latency_ms));
    }
    if (L.max_memory_bytes && x.has_latency && x.memory > static_cast<double>(*L.max_memory_bytes)) {
      add("memory", x.memory, static_cast<double>(*L.max_memory_bytes),
          "peak memory " + mb(x.memory) + " > " + mb(static_cast<double>(*L.max_memory_bytes)) + " (by " +
              mb(x.memory - static_cast<double>(*L.max_memory_bytes)) + ")");
    }
    if (x.has_latency && !x.fits)
      add("device_ram", x.memory, 0, "does not fit in the device's RAM (" + mb(x.memory) + ")");
    x.feasible = x.violations.empty();
  }
  if (L.max_latency_ms && !all_latency) rec.notes.push_back("max latency is not checked: device estimates are missing");

  // Scores against the baseline (docs/recommend.md): each term is a weight times a scale-free
  // quantity, so a variant's score never depends on which other variants are in the run.
  const GoalWeights& w = rec.weights;
  double tolerance = r.accuracy_tolerance_points;
  if (!std::isfinite(tolerance) || tolerance <= 0) tolerance = 1.0;
  if (L.max_accuracy_drop_points) tolerance = std::min(tolerance, *L.max_accuracy_drop_points);
  if (L.max_accuracy_drop_percent)
    tolerance = std::min(tolerance, *L.max_accuracy_drop_percent * baseline->accuracy / 100);
  tolerance = std::max(tolerance, 0.1);
  rec.accuracy_tolerance_points = tolerance;
  rec.baseline = baseline->technique;
  const Metrics& base = m[static_cast<std::size_t>(baseline - &r.variants[0])];
  for (auto& x : m) {
    auto terms = [&](double acc, double lat) {
      ScoreTerms t;
      t.accuracy = -w.accuracy * (base.accuracy - acc) / tolerance;
      t.size = w.size * std::log2(base.size / x.size);
      if (x.has_latency) t.latency = w.latency * std::log2(base.latency / lat);
      if (x.has_memory) t.memory = w.memory * std::log2(base.memory / x.memory);
      return t;
    };
    auto sum = [](const ScoreTerms& t) { return t.accuracy + t.size + t.latency + t.memory; };
    x.terms = terms(x.accuracy, x.latency);
    x.score = sum(x.terms);
    x.score_low = sum(terms(x.accuracy - x.ci, x.latency_high));
    x.score_high = sum(terms(x.accuracy + x.ci, x.latency_low));
  }
  if (!all_memory && all_latency)
    rec.notes.push_back("peak memory is missing for some variant: memory is left out of the score");

  // Pareto front over accuracy, size and latency (all variants).
  for (auto& x : m) {
    for (const auto& y : m) {
      if (&x != &y && dominates(y, x)) {
        x.dominated_by = y.v->technique;
        break;
      }
    }
    if (x.dominated_by.empty()) rec.pareto.push_back(x.v->technique);
  }

  std::vector<Metrics*> order;
  for (auto& x : m) order.push_back(&x);
  std::sort(order.begin(), order.end(), [](const Metrics* a, const Metrics* b) {
    if (a->feasible != b->feasible) return a->feasible;
    return better(*a, *b);
  });

  Metrics* winner = nullptr;
  for (auto* x : order) {
    // A variant dominated by a feasible one never wins (ties in score are broken the same way).
    bool beaten = false;
    for (auto* y : order)
      if (y != x && y->feasible && dominates(*y, *x)) beaten = true;
    if (x->feasible && !beaten) {
      winner = x;
      break;
    }
  }
  rec.meets_limits = winner != nullptr;
  if (!winner) {
    // Nothing meets the limits: the closest variant, by the summed relative excess over each limit.
    auto excess = [](const Metrics& x) {
      double sum = 0;
      for (const auto& v : x.violations)
        sum += v.limit == "device_ram" ? 10.0 : (v.value - v.bound) / std::max(std::fabs(v.bound), 1e-9);
      return sum;
    };
    winner = *std::min_element(order.begin(), order.end(), [&](const Metrics* a, const Metrics* b) {
      const double ea = excess(*a), eb = excess(*b);
      return ea != eb ? ea < eb : better(*a, *b);
    });
  }
  rec.technique = winner->v->technique;
  rec.score = winner->score;

  // The runner-up: the best other variant that meets the limits (or any, when none does).
  Metrics* runner = nullptr;
  for (auto* x : order)
    if (x != winner && (x->feasible || !rec.meets_limits)) {
      runner = x;
      break;
    }

  // Confidence: the winner's score margin over the runner-up against their interval spreads,
  // times the headroom of the winner's latency interval and accuracy CI under the limits.
  double confidence = 0.9;
  if (runner) {
    const double margin = winner->score - runner->score;
    const double spread =
        0.5 * ((winner->score_high - winner->score_low) + (runner->score_high - runner->score_low)) + 1e-3;
    confidence = std::clamp(0.5 + 0.5 * margin / spread, 0.5, 0.97);
  }
  auto headroom = [](double low, double high, double bound) {
    if (high <= bound) return 1.0;
    if (low >= bound) return 0.1;
    return std::clamp((bound - low) / (high - low), 0.1, 1.0);
  };
  if (L.max_latency_ms && winner->has_latency)
    confidence *= headroom(winner->latency_low, winner->latency_high, *L.max_latency_ms);
  if (L.max_accuracy_drop_points) {
    confidence *=
        headroom(winner->drop_points - winner->ci, winner->drop_points + winner->ci, *L.max_accuracy_drop_points);
  }
  if (!rec.meets_limits) confidence = std::min(confidence, 0.3);
  rec.confidence = confidence;

  // Why each variant won or lost.
  for (auto* x : order) {
    RankedVariant rv;
    rv.technique = x->v->technique;
    rv.score = x->score;
    rv.terms = x->terms;
    rv.feasible = x->feasible;
    rv.pareto = x->dominated_by.empty();
    rv.dominated_by = x->dominated_by;
    rv.violations = x->violations;
    if (x == winner) {
      rv.verdict = rec.meets_limits ? "recommended" : "closest to the limits";
    } else if (!x->feasible) {
      std::string v;
      for (const auto& viol : x->violations) v += (v.empty() ? "" : "; ") + viol.text;
      rv.verdict = "fails a limit: " + v;
    } else if (!x->dominated_by.empty()) {
      rv.verdict = "dominated by " + x->dominated_by + " (at least as accurate, small and fast)";
    } else {
      rv.verdict = "lower " + rec.goal + " score " + fmt("%.3f", x->score) + fmt(" vs %.3f", winner->score) +
                   fmt(" (by %.3f)", winner->score - x->score) + ": " + compare(*x, *winner) + " than " +
                   winner->v->technique + "; decided by " + deciding_terms(*x, *winner);
    }
    rec.ranking.push_back(std::move(rv));
  }

  // What relaxing a limit would buy: infeasible variants that would outscore the pick.
  for (auto* x : order) {
    if (x->feasible || x == winner || x->score <= winner->score || !rec.meets_limits) continue;
    bool ram = false;
    std::string what;
    double cost = 0;
    for (const auto& v : x->violations) {
      if (v.limit == "device_ram") ram = true;
      std::string allow;
      if (v.limit == "accuracy_drop_points")
        allow = fmt("%.2f pt", v.value) + fmt(" instead of %.2f pt", v.bound);
      else if (v.limit == "accuracy_drop_percent")
        allow = fmt("%.2f %%", v.value) + fmt(" instead of %.2f %% relative drop", v.bound);
      else if (v.limit == "size")
        allow = mb(v.value) + " instead of " + mb(v.bound);
      else if (v.limit == "latency")
        allow = fmt("%.2f ms", v.value) + fmt(" instead of %.2f ms", v.bound);
      else if (v.limit == "memory")
        allow = mb(v.value) + " of memory instead of " + mb(v.bound);
      what += (what.empty() ? "" : " and ") + allow;
      cost += (v.value - v.bound) / std::max(std::fabs(v.bound), 1e-9);
    }
    if (ram) continue;  // a device's RAM cannot be relaxed
    rec.relaxations.push_back(
        {x->v->technique, "allowing " + what + " unlocks " + x->v->technique + ": " + compare(*x, *winner), cost});
  }
  std::sort(rec.relaxations.begin(), rec.relaxations.end(),
            [](const Relaxation& a, const Relaxation& b) { return a.cost < b.cost; });

  // Reasoning.
  std::string reason;
  if (rec.meets_limits) {
    reason = winner->v->technique + " is recommended for the " + rec.goal + fmt(" goal (score %.3f", winner->score) +
             fmt(", confidence %.0f %%)", 100 * rec.confidence);
    if (winner->v != baseline) {
      reason += ": against " + baseline->technique + " it is " +
                compare(*winner, m[static_cast<std::size_t>(baseline - &r.variants[0])]);
    }
    reason += ".";
    if (runner) {
      reason += " Runner-up " + runner->v->technique + fmt(" (%.3f) is ", runner->score) + compare(*runner, *winner) +
                "; the winner's edge by term: " + deciding_terms(*winner, *runner) + ".";
    }
    if (!rec.relaxations.empty()) reason += " " + rec.relaxations.front().text + ".";
  } else {
    reason = "No variant meets every limit. The closest is " + winner->v->technique + ", which misses: ";
    std::string v;
    for (const auto& viol : winner->violations) v += (v.empty() ? "" : "; ") + viol.text;
    reason += v + ". Relax that to use it.";
    Relaxation smallest{winner->v->technique, "relax: " + v, 0};
    rec.relaxations.insert(rec.relaxations.begin(), smallest);
  }
  rec.reasoning = reason;
  return rec;
}

json violations_json(const std::vector<Violation>& vs) {
  json out = json::array();
  for (const auto& v : vs)
    out.push_back({{"limit", v.limit}, {"value", v.value}, {"bound", v.bound}, {"text", v.text}});
  return out;
}

}  // namespace

const char* goal_name(Goal goal) {
  switch (goal) {
    case Goal::kBalanced:
      return "balanced";
    case Goal::kSize:
      return "size";
    case Goal::kSpeed:
      return "speed";
    case Goal::kAccuracy:
      return "accuracy";
  }
  return "?";
}

std::optional<Goal> goal_from_name(std::string_view name) {
  for (Goal g : {Goal::kBalanced, Goal::kSize, Goal::kSpeed, Goal::kAccuracy})
    if (name == goal_name(g)) return g;
  return std::nullopt;
}

// Per unit: one tolerance of accuracy drop, one halving of size, latency or memory (docs/recommend.md).
GoalWeights goal_weights(Goal goal) {
  switch (goal) {
    case Goal::kBalanced:
      return {1.0, 0.5, 0.5, 0.25};
    case Goal::kSize:
      return {0.25, 1.0, 0.25, 0.25};
    case Goal::kSpeed:
      return {0.25, 0.25, 1.0, 0.0};
    case Goal::kAccuracy:
      return {1.0, 0.0, 0.0, 0.0};  // the most accurate; the tie-breaks order equal accuracies
  }
  return {1.0, 0.5, 0.5, 0.25};
}

Result<Recommendation> recommend(const Request& request) {
  return capture([&] { return run(request); });
}

json recommendation_to_json(const Recommendation& r) {
  json ranking = json::array();
  for (const auto& v : r.ranking) {
    ranking.push_back({{"technique", v.technique},
                       {"score", v.score},
                       {"terms",
                        {{"accuracy", v.terms.accuracy},
                         {"size", v.terms.size},
                         {"latency", v.terms.latency},
                         {"memory", v.terms.memory}}},
                       {"feasible", v.feasible},
                       {"pareto", v.pareto},
                       {"dominated_by", v.dominated_by},
                       {"violations", violations_json(v.violations)},
                       {"verdict", v.verdict}});
  }
  json relax = json::array();
  for (const auto& x : r.relaxations) relax.push_back({{"technique", x.technique}, {"text", x.text}});
  return {{"technique", r.technique},
          {"score", r.score},
          {"confidence", r.confidence},
          {"meets_limits", r.meets_limits},
          {"goal", r.goal},
          {"weights",
           {{"accuracy", r.weights.accuracy},
            {"size", r.weights.size},
            {"latency", r.weights.latency},
            {"memory", r.weights.memory}}},
          {"accuracy_tolerance_points", r.accuracy_tolerance_points},
          {"baseline", r.baseline},
          {"reasoning", r.reasoning},
          {"ranking", ranking},
          {"pareto", r.pareto},
          {"relaxations", relax},
          {"notes", r.notes}};
}

}  // namespace edgeopt::recommend
