#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "recommend/recommend.h"

namespace edgeopt::recommend {
namespace {

// A typical run: FP32 baseline and six techniques on one device (accuracy in points, size in
// bytes, latency in ms with a +-15 % interval).
Variant variant(const std::string& technique, double accuracy, std::int64_t size, double latency, double ci = 0.2,
                std::int64_t memory = 50'000'000, bool fits = true) {
  Variant v;
  v.technique = technique;
  v.accuracy = accuracy;
  v.accuracy_ci = ci;
  v.size_bytes = size;
  v.params = size / 4;
  v.macs = 100'000'000;
  v.estimates.push_back({"raspberry_pi_4", latency, latency * 0.85, latency * 1.15, memory, fits, latency * 5});
  return v;
}

std::vector<Variant> typical() {
  return {
      variant("fp32", 92.0, 44'000'000, 100),      variant("ptq_int8", 91.8, 11'200'000, 55),
      variant("ptq_int4", 91.1, 6'000'000, 56),    variant("unstructured", 91.6, 15'000'000, 100),
      variant("structured", 91.5, 30'000'000, 65), variant("qat_int8", 91.95, 11'200'000, 55),
      variant("hybrid", 90.8, 4'200'000, 48),
  };
}

Recommendation pick(const std::vector<Variant>& variants, Goal goal, Limits limits = {}) {
  Request r;
  r.variants = variants;
  r.device = "raspberry_pi_4";
  r.goal = goal;
  r.limits = limits;
  auto rec = recommend(r);
  EXPECT_TRUE(rec.ok()) << (rec.ok() ? "" : rec.error().to_string());
  return rec.ok() ? rec.value() : Recommendation{};
}

const RankedVariant* find(const Recommendation& r, const std::string& technique) {
  for (const auto& v : r.ranking)
    if (v.technique == technique) return &v;
  return nullptr;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct GoalCase {
  const char* name;
  Goal goal;
  Limits limits;
  const char* winner;
};

Limits drop_points(double p) {
  Limits l;
  l.max_accuracy_drop_points = p;
  return l;
}

Limits max_size(std::int64_t bytes) {
  Limits l;
  l.max_size_bytes = bytes;
  return l;
}

Limits max_latency(double ms) {
  Limits l;
  l.max_latency_ms = ms;
  return l;
}

TEST(Recommend, EachGoalPicksWhatItWeighs) {
  const std::vector<GoalCase> cases = {
      {"balanced", Goal::kBalanced, drop_points(1.0), "qat_int8"},
      {"balanced, no limits", Goal::kBalanced, {}, "qat_int8"},
      {"size", Goal::kSize, drop_points(1.5), "hybrid"},
      {"speed", Goal::kSpeed, drop_points(1.5), "hybrid"},
      {"accuracy", Goal::kAccuracy, {}, "fp32"},
      {"accuracy within 20 MB", Goal::kAccuracy, max_size(20'000'000), "qat_int8"},
      {"accuracy within 10 MB", Goal::kAccuracy, max_size(10'000'000), "ptq_int4"},
      {"accuracy within 50 ms", Goal::kAccuracy, max_latency(50), "hybrid"},
      {"size within 1 pt", Goal::kSize, drop_points(1.0), "ptq_int4"},
      {"speed within 0.5 pt", Goal::kSpeed, drop_points(0.5), "qat_int8"},
  };
  for (const auto& c : cases) {
    const auto r = pick(typical(), c.goal, c.limits);
    EXPECT_EQ(r.technique, c.winner) << c.name << ": " << r.reasoning;
    EXPECT_TRUE(r.meets_limits) << c.name;
    EXPECT_GT(r.confidence, 0) << c.name;
    EXPECT_LE(r.confidence, 1) << c.name;
    EXPECT_EQ(r.ranking.size(), typical().size()) << c.name;
    EXPECT_EQ(r.ranking.front().technique, r.technique) << c.name;
  }
}

TEST(Recommend, GoalWeightsAreTheDocumentedExchangeRates) {
  // docs/recommend.md: per tolerance of accuracy drop and per halving of size, latency, memory.
  struct Row {
    Goal goal;
    GoalWeights w;
  };
  const std::vector<Row> rows = {{Goal::kBalanced, {1.0, 0.5, 0.5, 0.25}},
                                 {Goal::kSize, {0.25, 1.0, 0.25, 0.25}},
                                 {Goal::kSpeed, {0.25, 0.25, 1.0, 0.0}},
                                 {Goal::kAccuracy, {1.0, 0.0, 0.0, 0.0}}};
  for (const auto& row : rows) {
    const auto w = goal_weights(row.goal);
    EXPECT_EQ(w.accuracy, row.w.accuracy) << goal_name(row.goal);
    EXPECT_EQ(w.size, row.w.size) << goal_name(row.goal);
    EXPECT_EQ(w.latency, row.w.latency) << goal_name(row.goal);
    EXPECT_EQ(w.memory, row.w.memory) << goal_name(row.goal);
  }
  // The score is the documented sum: balanced, 1 pt tolerance, ptq_int8 against fp32.
  const auto r = pick(typical(), Goal::kBalanced);
  const auto* int8 = find(r, "ptq_int8");
  ASSERT_NE(int8, nullptr);
  const double expected = -1.0 * 0.2 / 1.0 + 0.5 * std::log2(44.0 / 11.2) + 0.5 * std::log2(100.0 / 55.0);
  EXPECT_NEAR(int8->score, expected, 1e-9);
  EXPECT_NEAR(int8->terms.accuracy + int8->terms.size + int8->terms.latency + int8->terms.memory, int8->score, 1e-12);
  EXPECT_NEAR(find(r, "fp32")->score, 0.0, 1e-12);  // the baseline scores 0
  EXPECT_EQ(r.baseline, "fp32");
  EXPECT_EQ(r.accuracy_tolerance_points, 1.0);
}

TEST(Recommend, ASmallAccuracyGapDoesNotOutweighAMuchSmallerFile) {
  // Two variants only: min-max normalisation made 0.3 pt weigh as much as 6.7x; it must not.
  const std::vector<Variant> two = {variant("fp32", 92.0, 67'000'000, 100), variant("ptq_int8", 91.7, 10'000'000, 100)};
  struct Case {
    const char* name;
    Goal goal;
    Limits limits;
    const char* winner;
  };
  const std::vector<Case> cases = {
      {"balanced", Goal::kBalanced, {}, "ptq_int8"},
      {"balanced, 1 pt limit", Goal::kBalanced, drop_points(1.0), "ptq_int8"},
      {"balanced, 0.5 pt limit (tolerance 0.5)", Goal::kBalanced, drop_points(0.5), "ptq_int8"},
      {"size", Goal::kSize, {}, "ptq_int8"},
      {"speed (same latency: size decides)", Goal::kSpeed, {}, "ptq_int8"},
      {"accuracy", Goal::kAccuracy, {}, "fp32"},
      {"balanced, 0.2 pt limit", Goal::kBalanced, drop_points(0.2), "fp32"},
  };
  for (const auto& c : cases) {
    const auto r = pick(two, c.goal, c.limits);
    EXPECT_EQ(r.technique, c.winner) << c.name << ": " << r.reasoning;
    EXPECT_TRUE(r.meets_limits) << c.name;
  }
  // Slightly slower as well (110 ms): still the pick for balanced.
  auto slower = two;
  slower[1].estimates[0].latency_ms = 110;
  EXPECT_EQ(pick(slower, Goal::kBalanced).technique, "ptq_int8");
}

TEST(Recommend, ScoresDoNotDependOnWhichOtherVariantsArePresent) {
  const auto all = typical();
  const std::vector<Variant> few = {all[0], all[1], all[6]};  // fp32, ptq_int8, hybrid
  for (Goal g : {Goal::kBalanced, Goal::kSize, Goal::kSpeed, Goal::kAccuracy}) {
    const auto a = pick(all, g);
    const auto b = pick(few, g);
    for (const char* t : {"fp32", "ptq_int8", "hybrid"}) {
      EXPECT_NEAR(find(a, t)->score, find(b, t)->score, 1e-12) << goal_name(g) << " " << t;
    }
    // Adding variants that lose does not change the pick among the others.
    const std::vector<Variant> pair = {all[0], all[1]};
    auto more = pair;
    more.push_back(variant("bad", 80.0, 60'000'000, 200));
    EXPECT_EQ(pick(pair, g).technique, pick(more, g).technique) << goal_name(g);
  }
}

TEST(Recommend, AccuracyGoalPicksTheMostAccurateWithinTheLimits) {
  // Equal accuracy falls to the tie-breaks: the smaller, then the faster.
  std::vector<Variant> v = {variant("fp32", 92.0, 44'000'000, 100), variant("a", 91.9, 20'000'000, 60),
                            variant("b", 91.9, 11'000'000, 70), variant("c", 91.9, 11'000'000, 65),
                            variant("d", 90.0, 4'000'000, 30)};
  EXPECT_EQ(pick(v, Goal::kAccuracy).technique, "fp32");
  EXPECT_EQ(pick(v, Goal::kAccuracy, max_size(30'000'000)).technique, "c");
  EXPECT_EQ(pick(v, Goal::kAccuracy, max_latency(62)).technique, "a");
  EXPECT_EQ(pick(v, Goal::kAccuracy, max_size(5'000'000)).technique, "d");
}

struct LimitCase {
  const char* name;
  Limits limits;
  const char* loser;       // a variant this limit must exclude
  const char* limit_name;  // the violation it must report
};

TEST(Recommend, EachLimitExcludesAndSaysByHowMuch) {
  std::vector<LimitCase> cases;
  {
    Limits l;
    l.max_accuracy_drop_points = 1.0;
    cases.push_back({"absolute drop", l, "hybrid", "accuracy_drop_points"});
  }
  {
    Limits l;
    l.max_accuracy_drop_percent = 1.0;  // 1 % of 92.0 = 0.92 pt: int4 (0.9 pt) passes, hybrid (1.2 pt) fails
    cases.push_back({"relative drop", l, "hybrid", "accuracy_drop_percent"});
  }
  {
    Limits l;
    l.max_size_bytes = 10'000'000;
    cases.push_back({"size", l, "ptq_int8", "size"});
  }
  {
    Limits l;
    l.max_latency_ms = 60;
    cases.push_back({"latency", l, "structured", "latency"});
  }
  {
    Limits l;
    l.max_memory_bytes = 40'000'000;
    cases.push_back({"memory", l, "fp32", "memory"});
  }
  for (const auto& c : cases) {
    auto variants = typical();
    if (std::string(c.limit_name) == "memory") {
      for (auto& x : variants) x.estimates[0].peak_memory_bytes = 30'000'000;
      variants[0].estimates[0].peak_memory_bytes = 60'000'000;
    }
    const auto r = pick(variants, Goal::kBalanced, c.limits);
    const auto* loser = find(r, c.loser);
    ASSERT_NE(loser, nullptr) << c.name;
    EXPECT_FALSE(loser->feasible) << c.name;
    ASSERT_FALSE(loser->violations.empty()) << c.name;
    EXPECT_EQ(loser->violations.front().limit, c.limit_name) << c.name;
    EXPECT_TRUE(mentions(loser->violations.front().text, "by ")) << c.name << ": " << loser->violations.front().text;
    EXPECT_NE(r.technique, c.loser) << c.name;
    EXPECT_TRUE(r.meets_limits) << c.name;
  }
}

TEST(Recommend, RelativeAndAbsoluteDropAreBothHonoured) {
  // Baseline 50 %: a 0.8 pt drop is 1.6 % relative.
  std::vector<Variant> v = {variant("fp32", 50.0, 40'000'000, 100), variant("ptq_int8", 49.2, 10'000'000, 50)};
  Limits abs;
  abs.max_accuracy_drop_points = 1.0;
  EXPECT_EQ(pick(v, Goal::kBalanced, abs).technique, "ptq_int8");
  Limits rel;
  rel.max_accuracy_drop_percent = 1.0;
  const auto r = pick(v, Goal::kBalanced, rel);
  EXPECT_EQ(r.technique, "fp32");
  EXPECT_NEAR(find(r, "ptq_int8")->violations.front().value, 1.6, 1e-9);
  Limits both;
  both.max_accuracy_drop_points = 1.0;
  both.max_accuracy_drop_percent = 2.0;
  EXPECT_EQ(pick(v, Goal::kBalanced, both).technique, "ptq_int8");
}

TEST(Recommend, AStricterDropLimitMakesAccuracyWeighMore) {
  // The tolerance is the default 1 pt, or the drop limit when stricter; never looser.
  const auto loose = pick(typical(), Goal::kBalanced, drop_points(3.0));
  EXPECT_EQ(loose.accuracy_tolerance_points, 1.0);
  const auto strict = pick(typical(), Goal::kBalanced, drop_points(0.5));
  EXPECT_EQ(strict.accuracy_tolerance_points, 0.5);
  EXPECT_NEAR(find(strict, "ptq_int8")->terms.accuracy, -0.2 / 0.5, 1e-12);
  Limits rel;
  rel.max_accuracy_drop_percent = 0.5;  // 0.46 pt of 92
  EXPECT_NEAR(pick(typical(), Goal::kBalanced, rel).accuracy_tolerance_points, 0.46, 1e-12);
  Limits zero;
  zero.max_accuracy_drop_points = 0;  // floored, no division by zero
  const auto z = pick(typical(), Goal::kBalanced, zero);
  EXPECT_EQ(z.accuracy_tolerance_points, 0.1);
  EXPECT_EQ(z.technique, "fp32");
}

TEST(Recommend, RelaxingALimitSaysWhatItWouldBuy) {
  const auto r = pick(typical(), Goal::kSize, drop_points(1.0));
  ASSERT_FALSE(r.relaxations.empty());
  const auto& first = r.relaxations.front();
  EXPECT_EQ(first.technique, "hybrid");
  EXPECT_TRUE(mentions(first.text, "allowing 1.20 pt instead of 1.00 pt unlocks hybrid")) << first.text;
  EXPECT_TRUE(mentions(first.text, "smaller")) << first.text;
  EXPECT_TRUE(mentions(r.reasoning, "unlocks hybrid")) << r.reasoning;
}

TEST(Recommend, InfeasibleReturnsTheClosestAndTheSmallestRelaxation) {
  Limits l;
  l.max_size_bytes = 1'000'000;  // nothing is that small
  const auto r = pick(typical(), Goal::kBalanced, l);
  EXPECT_FALSE(r.meets_limits);
  EXPECT_EQ(r.technique, "hybrid");  // 4.2 MB: the smallest excess
  EXPECT_FALSE(r.technique.empty());
  EXPECT_TRUE(mentions(r.reasoning, "closest is hybrid")) << r.reasoning;
  EXPECT_FALSE(mentions(r.reasoning, "no model found"));
  ASSERT_FALSE(r.relaxations.empty());
  EXPECT_TRUE(mentions(r.relaxations.front().text, "size 4.20 MB > 1.00 MB")) << r.relaxations.front().text;
  EXPECT_LE(r.confidence, 0.3);
}

TEST(Recommend, InfeasibleCasesNameTheClosestVariant) {
  struct Case {
    const char* name;
    Limits limits;
    const char* closest;
    const char* limit;
  };
  std::vector<Case> cases;
  cases.push_back({"latency below every variant", max_latency(40), "hybrid", "latency"});
  cases.push_back({"size below every variant", max_size(2'000'000), "hybrid", "size"});
  {
    Limits l;  // 5 MB and 0.1 pt: nothing is both; hybrid's excess (0.2 + 10 relative) loses to int8's
    l.max_size_bytes = 5'000'000;
    l.max_accuracy_drop_points = 0.1;
    cases.push_back({"size and accuracy together", l, "qat_int8", "size"});
  }
  for (const auto& c : cases) {
    const auto r = pick(typical(), Goal::kBalanced, c.limits);
    EXPECT_FALSE(r.meets_limits) << c.name;
    EXPECT_EQ(r.technique, c.closest) << c.name << ": " << r.reasoning;
    ASSERT_FALSE(r.relaxations.empty()) << c.name;
    EXPECT_TRUE(mentions(r.relaxations.front().text, "relax")) << c.name;
    EXPECT_EQ(find(r, c.closest)->violations.front().limit, c.limit) << c.name;
    EXPECT_LE(r.confidence, 0.3) << c.name;
    EXPECT_TRUE(mentions(r.reasoning, "No variant meets every limit")) << c.name;
  }
}

TEST(Recommend, DeviceRamIsAHardLimitThatCannotBeRelaxed) {
  auto v = typical();
  v[6].estimates[0].fits_in_memory = false;  // hybrid does not fit
  const auto r = pick(v, Goal::kSize, {});
  EXPECT_NE(r.technique, "hybrid");
  EXPECT_EQ(find(r, "hybrid")->violations.front().limit, "device_ram");
  for (const auto& x : r.relaxations) EXPECT_NE(x.technique, "hybrid");
}

TEST(Recommend, ADominatedVariantNeverWins) {
  // Under every goal and weight, "worse" (less accurate, larger, slower than ptq_int8) must lose.
  for (Goal g : {Goal::kBalanced, Goal::kSize, Goal::kSpeed, Goal::kAccuracy}) {
    std::vector<Variant> v = {variant("fp32", 92.0, 44'000'000, 100), variant("ptq_int8", 91.8, 11'000'000, 55),
                              variant("worse", 91.7, 12'000'000, 60)};
    const auto r = pick(v, g);
    EXPECT_NE(r.technique, "worse") << goal_name(g);
    const auto* worse = find(r, "worse");
    EXPECT_EQ(worse->dominated_by, "ptq_int8");
    EXPECT_FALSE(worse->pareto);
    EXPECT_TRUE(mentions(worse->verdict, "dominated by ptq_int8")) << worse->verdict;
  }
  // Randomised sets under every goal and limit: the pick is never dominated by a feasible variant.
  std::uint64_t state = 12345;
  auto next = [&](double lo, double hi) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * static_cast<double>(state >> 11) / 9007199254740992.0;
  };
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<Variant> set = {variant("fp32", 92.0, 40'000'000, 100, 0.2, 60'000'000)};
    const int n = 2 + trial % 5;
    for (int i = 0; i < n; ++i) {
      set.push_back(variant("v" + std::to_string(i), next(88, 92.5), static_cast<std::int64_t>(next(2e6, 45e6)),
                            next(20, 120), 0.2, static_cast<std::int64_t>(next(10e6, 70e6))));
    }
    Limits l;
    if (trial % 3 == 1) l.max_accuracy_drop_points = next(0.2, 3);
    if (trial % 4 == 2) l.max_latency_ms = next(30, 110);
    for (Goal g : {Goal::kBalanced, Goal::kSize, Goal::kSpeed, Goal::kAccuracy}) {
      const auto r = pick(set, g, l);
      if (!r.meets_limits) continue;
      const auto* w = find(r, r.technique);
      ASSERT_NE(w, nullptr);
      EXPECT_TRUE(w->pareto || !find(r, w->dominated_by)->feasible)
          << goal_name(g) << " trial " << trial << ": " << r.technique << " dominated by " << w->dominated_by;
    }
  }
  const auto r = pick(typical(), Goal::kBalanced);
  // unstructured (15 MB, 100 ms, 91.6) is dominated by ptq_int8 (11.2 MB, 55 ms, 91.8).
  EXPECT_EQ(find(r, "unstructured")->dominated_by.empty(), false);
  for (const auto& p : r.pareto) EXPECT_NE(p, "unstructured");
}

TEST(Recommend, TiesAreBrokenDeterministically) {
  // Identical metrics: the tie-break falls to the name; order of input must not matter.
  std::vector<Variant> a = {variant("beta", 91.0, 10'000'000, 50), variant("alpha", 91.0, 10'000'000, 50)};
  std::vector<Variant> b = {a[1], a[0]};
  EXPECT_EQ(pick(a, Goal::kBalanced).technique, "alpha");
  EXPECT_EQ(pick(b, Goal::kBalanced).technique, "alpha");
  // Equal score, different accuracy: the more accurate wins.
  std::vector<Variant> c = {variant("fp32", 92.0, 40'000'000, 100), variant("x", 91.0, 10'000'000, 50),
                            variant("y", 91.5, 10'000'000, 50)};
  EXPECT_EQ(pick(c, Goal::kSize).technique, "y");
  // Equal score and accuracy: the smaller wins, then the faster; for every goal and input order.
  std::vector<Variant> d = {variant("fp32", 92.0, 40'000'000, 100), variant("big", 92.0, 40'000'000, 90),
                            variant("small", 92.0, 20'000'000, 100)};
  std::vector<Variant> e = {d[2], d[1], d[0]};
  EXPECT_EQ(pick(d, Goal::kAccuracy).technique, "small");
  EXPECT_EQ(pick(e, Goal::kAccuracy).technique, "small");
  std::vector<Variant> f = {variant("fp32", 92.0, 40'000'000, 100), variant("slow", 92.0, 40'000'000, 100),
                            variant("fast", 92.0, 40'000'000, 80)};
  EXPECT_EQ(pick(f, Goal::kAccuracy).technique, "fast");
}

TEST(Recommend, ReasoningNamesTheTradeOffsAndEveryLoserHasAVerdict) {
  const auto r = pick(typical(), Goal::kBalanced, drop_points(1.0));
  EXPECT_TRUE(mentions(r.reasoning, r.technique + " is recommended for the balanced goal")) << r.reasoning;
  EXPECT_TRUE(mentions(r.reasoning, "against fp32 it is")) << r.reasoning;
  EXPECT_TRUE(mentions(r.reasoning, "Runner-up")) << r.reasoning;
  EXPECT_TRUE(mentions(r.reasoning, "the winner's edge by term")) << r.reasoning;
  for (const auto& v : r.ranking) EXPECT_FALSE(v.verdict.empty()) << v.technique;
  // A feasible, undominated loser says by how much it lost and which terms decided it.
  const auto* int4 = find(r, "ptq_int4");
  ASSERT_NE(int4, nullptr);
  EXPECT_TRUE(mentions(int4->verdict, "lower balanced score")) << int4->verdict;
  EXPECT_TRUE(mentions(int4->verdict, "(by ")) << int4->verdict;
  EXPECT_TRUE(mentions(int4->verdict, "decided by accuracy -0.85 (0.85 pt less accurate)")) << int4->verdict;
  EXPECT_TRUE(mentions(int4->verdict, "size +0.45 (1.9x smaller)")) << int4->verdict;
  const auto j = recommendation_to_json(r);
  for (const char* key : {"technique", "score", "confidence", "reasoning", "ranking", "pareto", "weights",
                          "accuracy_tolerance_points", "baseline"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST(Recommend, ConfidenceFallsWhenTheLatencyIntervalStraddlesTheLimit) {
  // The same two candidates stay feasible under both limits; only the headroom differs.
  const std::vector<Variant> v = {variant("fp32", 92.0, 44'000'000, 100), variant("hybrid", 90.8, 4'200'000, 48),
                                  variant("ptq_int8", 91.8, 11'200'000, 45)};
  Limits safe;
  safe.max_latency_ms = 60;
  Limits tight;
  tight.max_latency_ms = 50;  // both intervals (40.8-55.2 and 38.3-51.8 ms) straddle it
  const auto a = pick(v, Goal::kSpeed, safe);
  const auto b = pick(v, Goal::kSpeed, tight);
  EXPECT_EQ(a.technique, b.technique);
  EXPECT_LT(b.confidence, a.confidence);
}

TEST(Recommend, WithoutDeviceEstimatesLatencyLeavesTheScore) {
  auto v = typical();
  for (auto& x : v) x.estimates.clear();
  const auto r = pick(v, Goal::kSpeed);
  EXPECT_FALSE(r.technique.empty());
  EXPECT_FALSE(r.notes.empty());
}

TEST(Recommend, ASingleVariantIsRecommendedWithoutARunnerUp) {
  const auto r = pick({variant("fp32", 92.0, 44'000'000, 100)}, Goal::kBalanced);
  EXPECT_EQ(r.technique, "fp32");
  EXPECT_TRUE(r.meets_limits);
  EXPECT_EQ(r.pareto.size(), 1U);
  EXPECT_FALSE(mentions(r.reasoning, "Runner-up"));
}

TEST(Recommend, BadInputIsAnError) {
  Request empty;
  EXPECT_FALSE(recommend(empty).ok());
  Request r;
  r.variants = typical();
  r.variants[1].accuracy = std::nan("");
  EXPECT_FALSE(recommend(r).ok());
  r.variants = typical();
  r.variants[2].size_bytes = 0;
  EXPECT_FALSE(recommend(r).ok());
  r.variants = typical();
  r.limits.max_latency_ms = -1;
  EXPECT_FALSE(recommend(r).ok());
  EXPECT_FALSE(goal_from_name("fastest").has_value());
  EXPECT_EQ(goal_from_name("speed"), Goal::kSpeed);
}

}  // namespace
}  // namespace edgeopt::recommend
