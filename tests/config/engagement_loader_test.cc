// The engagement and outcomes sections, a cadence's stop_on and a step's
// when (config/engagement_loader.cc, config/cadences_loader.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "harness.h"

namespace tp {
namespace {

using ::testing::ElementsAre;

constexpr std::string_view kEngagementBase = R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
)";

LoadResult Load(std::string_view sections, std::string_view cadence_extra = "",
                std::string_view step_extra = "") {
  std::string yaml(kEngagementBase);
  yaml += sections;
  yaml += "cadences:\n  - name: trust\n";
  yaml += cadence_extra;
  yaml += "    steps:\n      - {after: 1d, topic: hello";
  yaml += step_extra;
  yaml += "}\n";
  return LoadRulesString(yaml, "t.yaml");
}

std::vector<std::string> Errors(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.ToString());
  return out;
}

TEST(EngagementLoaderTest, DefaultsAreTheFourTypesWithRepliedAndClickedAsTrust) {
  LoadResult r = Load("");
  ASSERT_TRUE(r.ok()) << Errors(r).front();
  std::vector<std::pair<std::string, bool>> types;
  for (const auto& t : r.rules->engagement_types) types.emplace_back(t.name, t.trust);
  EXPECT_THAT(types, ElementsAre(std::pair<std::string, bool>{"delivered", false},
                                 std::pair<std::string, bool>{"read", false},
                                 std::pair<std::string, bool>{"replied", true},
                                 std::pair<std::string, bool>{"clicked", true}));
  EXPECT_EQ(r.rules->outcomes.trust_within, (Duration{10, Duration::Unit::kDays}));
  EXPECT_EQ(r.rules->outcomes.repurchase_grace, (Duration{0, Duration::Unit::kDays}));
  EXPECT_EQ(r.rules->outcomes.attribution_window, (Duration{7, Duration::Unit::kDays}));
  EXPECT_TRUE(r.rules->cadences[0].stop_on.empty());
  EXPECT_EQ(r.rules->cadences[0].steps[0].when, When::kAlways);
}

TEST(EngagementLoaderTest, TypesTrustStopOnAndWhenAreRead) {
  LoadResult r = Load(
      "engagement: {types: [opened, replied, bought_online], trust: [replied]}\n"
      "outcomes: {trust_within: 14d, repurchase_grace: 3d, attribution_window: 48h}\n",
      "    stop_on: [replied, bought_online]\n", ", when: not_engaged");
  ASSERT_TRUE(r.ok()) << Errors(r).front();
  const Rules& rules = *r.rules;
  ASSERT_EQ(rules.engagement_types.size(), 3u);
  EXPECT_FALSE(rules.engagement_types[0].trust);
  EXPECT_TRUE(rules.engagement_types[1].trust);
  EXPECT_EQ(rules.EngagementTypeIndex("bought_online"), 2);
  EXPECT_THAT(rules.cadences[0].stop_on, ElementsAre(1, 2));
  EXPECT_EQ(rules.cadences[0].steps[0].when, When::kNotEngaged);
  EXPECT_EQ(rules.outcomes.trust_within, (Duration{14, Duration::Unit::kDays}));
  EXPECT_EQ(rules.outcomes.repurchase_grace, (Duration{3, Duration::Unit::kDays}));
  EXPECT_EQ(rules.outcomes.attribution_window, (Duration{48, Duration::Unit::kHours}));
  // Without `trust`, the defaults' names where the types have them.
  LoadResult own = Load("engagement: {types: [clicked, opened]}\n");
  ASSERT_TRUE(own.ok());
  EXPECT_TRUE(own.rules->engagement_types[0].trust);
  EXPECT_FALSE(own.rules->engagement_types[1].trust);
}

TEST(EngagementLoaderTest, MistakesAreNamedWhereTheyAre) {
  EXPECT_THAT(Errors(Load("engagement: {types: [replied, replied]}\n")),
              ElementsAre("t.yaml:6:31: error: engagement type 'replied' is listed twice"));
  EXPECT_THAT(Errors(Load("engagement: {types: [], trust: [replied]}\n")),
              ElementsAre("t.yaml:6:21: error: engagement types must be a non-empty list of "
                          "names"));
  EXPECT_THAT(Errors(Load("", "    stop_on: [answered]\n")),
              ElementsAre("t.yaml:8:15: error: unknown engagement type 'answered' in cadence "
                          "'trust' stop_on"));
  EXPECT_THAT(Errors(Load("", "", ", when: replied")),
              ElementsAre("t.yaml:9:41: error: when must be 'engaged' or 'not_engaged'"));
  EXPECT_THAT(Errors(Load("engagement: {trust: []}\n", "", ", when: engaged")),
              ElementsAre("t.yaml:10:41: error: 'when' needs a trust signal to decide on, and "
                          "engagement trust lists none"));
  EXPECT_THAT(Errors(Load("outcomes: {trust_within: 0d, repurchase_grace: -1d, pace: 2d}\n")),
              ElementsAre("t.yaml:6:26: error: outcomes trust_within must be more than 0",
                          "t.yaml:6:48: error: outcomes repurchase_grace must be 0 or more",
                          "t.yaml:6:53: error: unknown key 'pace' in outcomes (expected one of: "
                          "trust_within, repurchase_grace, attribution_window)"));
}

}  // namespace
}  // namespace tp
