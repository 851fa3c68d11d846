// The playbook's keys in the config (docs/config.md): tier conditions
// `within`, `bought` and `attributes`, a step's own `sinks`, and
// `frequency_cap` as one cap or a list of caps per day, week or month,
// scoped to sinks or not; each with its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "harness.h"

namespace tp {
namespace {

using testing::ConfigErrors;
using ::testing::ElementsAre;

// The lines before `tiers`, `frequency_cap` and `cadences`, which each test
// appends.
constexpr std::string_view kHead = R"(version: 1
products: {daily: {supply_days: 15}, yearly: {supply_days: 365}}
sinks:
  - {name: wecom, type: queue}
  - {name: advisor, type: queue}
)";
constexpr std::string_view kCadences = R"(cadences:
  - name: c
    sinks: [wecom]
    steps:
      - {after: 1d, topic: a, sinks: [advisor]}
      - {after: 2d, topic: b}
)";

TEST(PlaybookLoaderTest, EveryNewKeyLoads) {
  const std::string yaml = std::string(kHead) + R"(frequency_cap:
  - {max: 2, per: day}
  - {max: 5, per: week}
  - {max: 4, per: month, sinks: [wecom]}
tiers:
  - {name: expert, min_purchases: 3, min_spend: 800, within: 180d}
  - {name: fan, bought: [yearly]}
  - {name: natural, attributes: {style: [natural, nude], channel: wecom}}
  - {name: novice, within: 30d}
)" + std::string(kCadences);
  auto rules = testing::MustLoad(yaml);
  ASSERT_EQ(rules->frequency_caps.size(), 3u);
  EXPECT_EQ(rules->frequency_caps[0].per, FrequencyCap::Per::kDay);
  EXPECT_EQ(rules->frequency_caps[1].per, FrequencyCap::Per::kWeek);
  EXPECT_EQ(rules->frequency_caps[1].max, 5);
  EXPECT_EQ(rules->frequency_caps[2].per, FrequencyCap::Per::kMonth);
  EXPECT_THAT(rules->frequency_caps[2].sinks, ElementsAre(0));
  EXPECT_EQ(rules->tiers[0].within, (Duration{180, Duration::Unit::kDays}));
  EXPECT_THAT(rules->tiers[1].bought, ElementsAre(1));
  EXPECT_THAT(rules->tiers[2].attributes,
              ElementsAre(AttributeCondition{"style", {"natural", "nude"}},
                          AttributeCondition{"channel", {"wecom"}}));
  const Cadence& c = rules->cadences[0];
  EXPECT_THAT(c.steps[0].sinks, ElementsAre(1));
  EXPECT_THAT(rules->SinksOf(c, c.steps[0]), ElementsAre(1));
  EXPECT_TRUE(c.steps[1].sinks.empty());
  EXPECT_THAT(rules->SinksOf(c, c.steps[1]), ElementsAre(0));
}

TEST(PlaybookLoaderTest, TheSingleCapFormKeepsItsMeaning) {
  auto rules =
      testing::MustLoad(std::string(kHead) + "frequency_cap: {max: 3}\n" + std::string(kCadences));
  ASSERT_EQ(rules->frequency_caps.size(), 1u);
  EXPECT_EQ(rules->frequency_caps[0].max, 3);
  EXPECT_EQ(rules->frequency_caps[0].per, FrequencyCap::Per::kDay);
  EXPECT_TRUE(rules->frequency_caps[0].sinks.empty());
}

TEST(PlaybookLoaderTest, TheExamplePlaybookLoads) {
  LoadResult r = LoadRulesFile(TP_PLAYBOOK_CONFIG);
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  EXPECT_EQ(r.rules->frequency_caps.size(), 3u);
  EXPECT_EQ(r.rules->tiers.size(), 5u);
}

TEST(PlaybookLoaderTest, ErrorsNameTheKeyAndTheLine) {
  const std::string yaml = std::string(kHead) + R"(frequency_cap:
  - {max: 2, per: fortnight}
  - {max: 5, per: week, sinks: [sms]}
  - {max: 4, per: month, sinks: []}
  - {per: day}
tiers:
  - {name: recent, within: 0d}
  - {name: fan, bought: [monthly]}
  - {name: style, attributes: {style: []}}
  - {name: other, attributes: []}
  - {name: last, bought: [daily]}
cadences:
  - name: c
    steps:
      - {after: 1d, topic: a, sinks: []}
      - {after: 2d, topic: b, sinks: [sms]}
)";
  EXPECT_THAT(
      ConfigErrors(yaml),
      ElementsAre(
          "t.yaml:7:19: error: frequency_cap.per must be day, week or month (buyer-local "
          "calendar periods), got 'fortnight'",
          "t.yaml:8:33: error: unknown sink 'sms' in frequency_cap.sinks",
          "t.yaml:9:33: error: frequency_cap.sinks must be a non-empty list of sink names",
          "t.yaml:10:5: error: missing required key 'max' in a frequency_cap",
          "t.yaml:12:28: error: tier 'recent' within must be positive, like 180d",
          "t.yaml:13:26: error: unknown product 'monthly' in tier 'fan' bought",
          "t.yaml:14:39: error: tier 'style' attributes 'style' must list at least one value",
          "t.yaml:15:31: error: tier 'other' attributes must be a non-empty map of key to a value "
          "or a list of values",
          "t.yaml:16:5: error: the last tier must have no conditions, so that every buyer gets a "
          "tier",
          "t.yaml:20:38: error: the sinks of step 'a' of cadence 'c' must be a non-empty list of "
          "sink names",
          "t.yaml:21:39: error: unknown sink 'sms' in the sinks of step 'b' of cadence 'c'"));
}

TEST(PlaybookLoaderTest, AtMostSixteenCaps) {
  std::string caps = "frequency_cap: [";
  for (int i = 0; i < 17; ++i) caps += std::string(i ? ", " : "") + "{max: 1}";
  EXPECT_THAT(ConfigErrors(std::string(kHead) + caps + "]\n" + std::string(kCadences)),
              ElementsAre("t.yaml:6:16: error: frequency_cap must be one cap or a list of 1 to 16 "
                          "caps"));
  EXPECT_THAT(ConfigErrors(std::string(kHead) + "frequency_cap: 2\n" + std::string(kCadences)),
              ElementsAre("t.yaml:6:16: error: frequency_cap must be one cap {max, per, sinks} or "
                          "a list of them"));
  EXPECT_THAT(ConfigErrors(std::string(kHead) + "frequency_cap: []\n" + std::string(kCadences)),
              ElementsAre("t.yaml:6:16: error: frequency_cap must be one cap or a list of 1 to 16 "
                          "caps"));
}

}  // namespace
}  // namespace tp
