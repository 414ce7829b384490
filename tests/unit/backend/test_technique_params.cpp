#include <gtest/gtest.h>

#include <set>

#include "techniques/hybrid.h"
#include "techniques/ptq_int4.h"
#include "techniques/technique.h"

namespace edgeopt::techniques {
namespace {

std::string value_of(const Technique& t, const std::string& name) {
  for (const Param& p : t.params()) {
    if (p.name == name) return p.value;
  }
  return "<missing>";
}

TEST(TechniqueParams, EveryTechniqueListsItsParametersWithDefaultsAndHelp) {
  std::set<std::string> ids;
  for (const Technique* t : registry()) {
    EXPECT_TRUE(ids.insert(std::string(t->id())).second) << t->id() << " is registered twice";
    std::set<std::string> names;
    for (const Param& p : t->params()) {
      EXPECT_TRUE(names.insert(p.name).second) << t->id() << "." << p.name;
      EXPECT_FALSE(p.value.empty()) << t->id() << "." << p.name;
      EXPECT_FALSE(p.help.empty()) << t->id() << "." << p.name;
    }
    EXPECT_FALSE(names.empty()) << t->id();
    // Re-applying every default gives the same parameters.
    std::map<std::string, std::string> defaults;
    for (const Param& p : t->params()) defaults[p.name] = p.value;
    auto same = t->with_params(defaults);
    ASSERT_TRUE(same.ok()) << t->id() << ": " << same.error().to_string();
    EXPECT_EQ(same.value()->id(), t->id());
    for (const Param& p : t->params()) EXPECT_EQ(value_of(*same.value(), p.name), p.value) << t->id() << "." << p.name;
  }
  EXPECT_EQ(ids.size(), 8U);
}

TEST(TechniqueParams, SettingOneChangesOnlyThatOne) {
  const Technique* int4 = find_technique("ptq_int4");
  ASSERT_NE(int4, nullptr);
  auto changed = int4->with_params({{"group_size", "64"}, {"sparse", "true"}});
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  EXPECT_EQ(value_of(*changed.value(), "group_size"), "64");
  EXPECT_EQ(value_of(*changed.value(), "sparse"), "true");
  EXPECT_EQ(value_of(*changed.value(), "min_fan_in"), value_of(*int4, "min_fan_in"));
  EXPECT_EQ(value_of(*int4, "group_size"), "32") << "the registry's instance keeps its defaults";
  EXPECT_EQ(dynamic_cast<const PtqInt4&>(*changed.value()).options().group_size, 64);

  auto schedule = find_technique("hybrid_int4")->with_params({{"schedule", "0.4,0.8"}, {"group_size", "0"}});
  ASSERT_TRUE(schedule.ok()) << schedule.error().to_string();
  EXPECT_EQ(schedule.value()->id(), "hybrid_int4");
  const HybridOptions& o = dynamic_cast<const Hybrid&>(*schedule.value()).options();
  EXPECT_EQ(o.prune.schedule, (std::vector<double>{0.4, 0.8}));
  EXPECT_EQ(o.int4_options.group_size, 0);
  EXPECT_TRUE(o.int4_options.sparse);
}

TEST(TechniqueParams, BadNamesAndValuesSayWhatIsWrong) {
  const Technique* int8 = find_technique("ptq_int8");
  auto unknown = int8->with_params({{"bits", "4"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("ptq_int8 has no parameter 'bits'"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().hint.find("calibration_images"), std::string::npos);
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"calibration_images", "many"}, {"calibration_images", "12.5"}, {"calibration_images", "0"}, {"calibration_images", ""}}) {
    auto bad = int8->with_params({{name, text}});
    ASSERT_FALSE(bad.ok()) << name << "=" << text;
    EXPECT_NE(bad.error().message.find("ptq_int8: parameter 'calibration_images'"), std::string::npos) << bad.error().message;
  }
  EXPECT_FALSE(find_technique("prune_structured")->with_params({{"global_ranking", "maybe"}}).ok());
  EXPECT_FALSE(find_technique("prune_unstructured")->with_params({{"schedule", "0.5,,0.7"}}).ok());
  EXPECT_FALSE(find_technique("prune_unstructured")->with_params({{"schedule", "0.5,1.5"}}).ok());
}

TEST(TechniqueParams, WorkEstimatesGrowWithTheTrainingSplit) {
  for (const Technique* t : registry()) {
    const double small = t->estimate_work(1000).image_passes;
    const double large = t->estimate_work(60000).image_passes;
    EXPECT_GE(small, 0) << t->id();
    EXPECT_GE(large, small) << t->id();
    if (t->requires_data()) EXPECT_GT(small, 0) << t->id();
  }
  // More epochs, more work.
  const Technique* qat = find_technique("qat_int8");
  auto longer = qat->with_params({{"epochs", "4"}});
  ASSERT_TRUE(longer.ok());
  EXPECT_GT(longer.value()->estimate_work(60000).image_passes, qat->estimate_work(60000).image_passes);
}

}  // namespace
}  // namespace edgeopt::techniques
