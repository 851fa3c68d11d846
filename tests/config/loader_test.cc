#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "minimal_config.h"

namespace tp {
namespace {

using testing::ConfigErrors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kMinimal;
using ::testing::Not;

TEST(LoaderTest, TheBriefsConfigLoadsWithEveryValue) {
  LoadResult r = LoadRulesString(testing::kBriefConfig, "brief.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  const Rules& rules = *r.rules;
  EXPECT_EQ(rules.timezone_name, "Asia/Shanghai");
  EXPECT_EQ(rules.send_window.from.minutes, 9 * 60);
  EXPECT_EQ(rules.send_window.to.minutes, 21 * 60);
  ASSERT_EQ(rules.frequency_caps.size(), 1u);
  EXPECT_EQ(rules.frequency_caps[0].max, 2);
  EXPECT_EQ(rules.frequency_caps[0].per, FrequencyCap::Per::kDay);
  EXPECT_TRUE(rules.frequency_caps[0].sinks.empty());
  EXPECT_EQ(rules.misfire_grace, (Duration{24, Duration::Unit::kHours}));
  ASSERT_EQ(rules.products.size(), 2u);
  EXPECT_EQ(rules.products[1].name, "yearly");
  EXPECT_EQ(rules.products[1].supply_days, 365);
  ASSERT_EQ(rules.tiers.size(), 3u);
  EXPECT_EQ(rules.tiers[0].min_purchases, 4);
  EXPECT_EQ(rules.tiers[0].min_spend, 1500.0);
  EXPECT_FALSE(rules.tiers[2].min_purchases.has_value());
  ASSERT_EQ(rules.cadences.size(), 3u);
  const Cadence& trust = rules.cadences[0];
  EXPECT_TRUE(trust.cancel_on_repurchase);
  EXPECT_THAT(trust.products, ElementsAre(0, 1));
  EXPECT_THAT(trust.steps[0].tiers, ElementsAre(2));
  EXPECT_THAT(trust.steps[1].tiers, ElementsAre(1, 0));
  EXPECT_EQ(trust.steps[1].id, "colour-match");
  const Cadence& repurchase = rules.cadences[1];
  EXPECT_EQ(repurchase.steps[1].anchor, Anchor::kRunout);
  const Cadence& sw = rules.cadences[2];
  EXPECT_EQ(sw.trigger, Trigger::kSwitch);
  EXPECT_FALSE(sw.cancel_on_repurchase);
  EXPECT_THAT(sw.from, ElementsAre(0));
  EXPECT_THAT(sw.to, ElementsAre(1));
  EXPECT_THAT(sw.sinks, ElementsAre(0));
}

TEST(LoaderTest, ExampleConfigFileIsValid) {
  LoadResult r = LoadRulesFile(TP_EXAMPLE_CONFIG);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors.front().ToString());
}

TEST(LoaderTest, DefaultsForKeysNotShown) {
  LoadResult r = LoadRulesString(kMinimal, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  const Rules& rules = *r.rules;
  EXPECT_EQ(rules.timezone_name, "UTC");
  EXPECT_EQ(rules.send_window.from.minutes, 0);
  EXPECT_EQ(rules.send_window.to.minutes, 24 * 60);
  EXPECT_TRUE(rules.frequency_caps.empty());
  EXPECT_EQ(rules.misfire_grace, (Duration{1, Duration::Unit::kHours}));
  ASSERT_EQ(rules.tiers.size(), 1u);
  EXPECT_EQ(rules.tiers[0].name, "default");
  EXPECT_EQ(rules.cadences[0].trigger, Trigger::kPurchase);
  EXPECT_THAT(rules.cadences[0].products, ElementsAre(0));
  EXPECT_FALSE(rules.cadences[0].cancel_on_repurchase);
  EXPECT_EQ(rules.listen, "127.0.0.1:8787");
  EXPECT_EQ(rules.database, "/var/lib/touchpoint/touchpoint.db");
  EXPECT_EQ(rules.database_sync, Rules::DatabaseSync::kNormal);
  EXPECT_EQ(rules.http_request_timeout, (Duration{30, Duration::Unit::kSeconds}));
  EXPECT_EQ(rules.http_max_connections, 512);
  EXPECT_TRUE(rules.http_allowed_hosts.empty());
}

TEST(LoaderTest, DaemonKeys) {
  std::string yaml(kMinimal);
  yaml +=
      "database_sync: full\nhttp: {request_timeout: 2m, max_connections: 64, allowed_hosts: "
      "[Touchpoint.Internal, tp-1.example.com., '*']}\n";
  LoadResult r = LoadRulesString(yaml, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  EXPECT_EQ(r.rules->database_sync, Rules::DatabaseSync::kFull);
  EXPECT_EQ(r.rules->http_request_timeout, (Duration{2, Duration::Unit::kMinutes}));
  EXPECT_EQ(r.rules->http_max_connections, 64);
  EXPECT_THAT(r.rules->http_allowed_hosts,
              ElementsAre("touchpoint.internal", "tp-1.example.com", "*"));

  std::string bad(kMinimal);
  bad += "database_sync: sometimes\nhttp: {request_timeout: 1d, body: 1, max_connections: 0}\n";
  EXPECT_THAT(ConfigErrors(bad),
              ElementsAre("t.yaml:10:16: error: database_sync must be normal or full, got "
                          "'sometimes'",
                          "t.yaml:11:25: error: request_timeout must be a positive number of s, "
                          "m or h",
                          "t.yaml:11:29: error: unknown key 'body' in http (expected one of: "
                          "request_timeout, max_connections, allowed_hosts)",
                          "t.yaml:11:55: error: max_connections must be an integer from 1 to "
                          "1000000, got '0'"));
  EXPECT_THAT(
      ConfigErrors(std::string(kMinimal) +
                   "http: {allowed_hosts: ['tp.internal:8787', 'http://tp.internal', '']}\n"),
      ElementsAre("t.yaml:10:24: error: allowed_hosts: 'tp.internal:8787' is not a host name "
                  "(no scheme, no port): e.g. touchpoint.internal, or \"*\" for any",
                  "t.yaml:10:44: error: allowed_hosts: 'http://tp.internal' is not a host name "
                  "(no scheme, no port): e.g. touchpoint.internal, or \"*\" for any",
                  "t.yaml:10:66: error: allowed_hosts entries must be a non-empty string"));
  EXPECT_THAT(ConfigErrors(std::string(kMinimal) + "http: {allowed_hosts: tp.internal}\n"),
              ElementsAre("t.yaml:10:23: error: allowed_hosts must be a list of host names"));
}

TEST(LoaderTest, YamlSyntaxErrorHasItsPosition) {
  EXPECT_THAT(ConfigErrors("version: 1\nproducts: {daily: {supply_days: 15}\n"),
              ElementsAre(HasSubstr("t.yaml:3:1: error: YAML syntax:")));
  EXPECT_THAT(ConfigErrors("version: 1\n  bad: indent\n"),
              ElementsAre(HasSubstr("t.yaml:2:6: error: YAML syntax")));
}

TEST(LoaderTest, NonMapDocument) {
  EXPECT_THAT(ConfigErrors("- 1\n- 2\n"),
              ElementsAre("t.yaml:1:1: error: the config must be a YAML map of top-level keys"));
  EXPECT_THAT(ConfigErrors(""),
              ElementsAre("t.yaml:1:1: error: the config must be a YAML map of top-level keys"));
}

TEST(LoaderTest, MissingRequiredTopLevelKeysPointAtTheRoot) {
  EXPECT_THAT(ConfigErrors("timezone: UTC\n"),
              ElementsAre("t.yaml:1:1: error: missing required key 'version' in the config",
                          "t.yaml:1:1: error: missing required key 'products' in the config",
                          "t.yaml:1:1: error: missing required key 'sinks' in the config",
                          "t.yaml:1:1: error: missing required key 'cadences' in the config"));
}

TEST(LoaderTest, UnknownAndDuplicateKeys) {
  std::string yaml(kMinimal);
  yaml += "timezon: UTC\nversion: 1\n";
  EXPECT_THAT(ConfigErrors(yaml),
              ElementsAre(HasSubstr("t.yaml:10:1: error: unknown key 'timezon' in the config "
                                    "(expected one of: version, timezone,"),
                          "t.yaml:11:1: error: duplicate key 'version' in the config"));
}

TEST(LoaderTest, EveryValueErrorAtOnceWithLineAndColumn) {
  constexpr std::string_view yaml = R"(version: 2
timezone: Mars/Olympus
send_window: {from: "9am", to: "21:00"}
frequency_cap: {max: 0, per: fortnight}
misfire_grace: soon
products:
  daily: {supply_days: -1}
  "bad name": {supply_days: 1}
  yearly: {supply_days: 365, colour: blue}
tiers:
  - {name: expert, min_purchases: many, min_spend: -5}
  - {name: expert}
sinks:
  - {name: outbox, type: kafka}
cadences:
  - name: trust
    trigger: sometimes
    products: [daily, weekly]
    cancel_on_repurchase: yes
    sinks: [outbox, crm]
    steps:
      - {after: 1w, topic: a}
      - {after: -1d, topic: b}
      - {after: 1d, topic: c, anchor: tomorrow, tiers: [guru]}
      - {topic: d}
      - {after: 2d, topic: a}
  - name: trust
    steps: []
)";
  EXPECT_THAT(
      ConfigErrors(yaml),
      ElementsAre(
          "t.yaml:1:10: error: unsupported config version (this build reads version: 1)",
          "t.yaml:2:11: error: unknown time zone 'Mars/Olympus' (use an IANA name like "
          "Asia/Shanghai)",
          "t.yaml:3:21: error: send_window.from must be a time of day \"HH:MM\" from 00:00 to "
          "24:00",
          "t.yaml:4:22: error: frequency_cap.max must be an integer from 1 to 1000, got '0'",
          "t.yaml:4:30: error: frequency_cap.per must be day, week or month (buyer-local "
          "calendar periods), got 'fortnight'",
          "t.yaml:5:16: error: misfire_grace must be a duration like 90s, 15m, 24h or 3d, got "
          "'soon'",
          "t.yaml:7:24: error: product 'daily' supply_days must be an integer from 1 to 36500, got "
          "'-1'",
          "t.yaml:8:3: error: product name 'bad name' must be 1-64 letters, digits, '_', '-' or "
          "'.', not starting with '-' or '.'",
          "t.yaml:9:30: error: unknown key 'colour' in product 'yearly' (expected one of: "
          "supply_days)",
          "t.yaml:11:35: error: tier 'expert' min_purchases must be an integer from 0 to 1000000, "
          "got 'many'",
          "t.yaml:11:52: error: tier 'expert' min_spend must be a number >= 0, got '-5'",
          "t.yaml:12:12: error: duplicate tier 'expert'",
          "t.yaml:14:26: error: unknown sink type 'kafka' (expected queue, webhook or redis)",
          "t.yaml:17:14: error: cadence 'trust' trigger must be 'purchase' or 'switch'",
          "t.yaml:18:23: error: unknown product 'weekly' in cadence 'trust' products",
          "t.yaml:19:27: error: cadence 'trust' cancel_on_repurchase must be true or false",
          "t.yaml:20:21: error: unknown sink 'crm' in cadence 'trust' sinks",
          "t.yaml:22:17: error: after must be a duration like 90s, 15m, 24h or 3d, got '1w'",
          "t.yaml:23:17: error: a negative 'after' is allowed only with anchor: runout",
          "t.yaml:24:39: error: anchor must be 'purchase' or 'runout'",
          "t.yaml:24:57: error: unknown tier 'guru' in step tiers",
          "t.yaml:25:9: error: missing required key 'after' in a step of cadence 'trust'",
          "t.yaml:26:28: error: step id 'a' is used twice in cadence 'trust' (ids default to the "
          "topic; give one step an 'id:')",
          "t.yaml:27:11: error: duplicate cadence 'trust'",
          "t.yaml:28:12: error: cadence 'trust' steps must be a non-empty list"));
}

TEST(LoaderTest, SendWindowMustBeForwardWithinADay) {
  std::string yaml(kMinimal);
  yaml += "send_window: {from: \"21:00\", to: \"09:00\"}\n";
  EXPECT_THAT(ConfigErrors(yaml),
              ElementsAre("t.yaml:10:34: error: send_window.to (09:00) must be later than from "
                          "(21:00); the window is [from, to) within one day"));
  std::string missing(kMinimal);
  missing += "send_window: {from: \"09:00\"}\n";
  EXPECT_THAT(ConfigErrors(missing),
              ElementsAre("t.yaml:10:14: error: missing required key 'to' in send_window"));
}

TEST(LoaderTest, SwitchCadenceNeedsFromAndToAndNoProducts) {
  constexpr std::string_view yaml = R"(version: 1
products: {daily: {supply_days: 15}, yearly: {supply_days: 365}}
sinks: [{name: q, type: queue}]
cadences:
  - name: sw
    trigger: switch
    products: [daily]
    steps: [{after: 1d, topic: x}]
  - name: p
    from: [daily]
    steps: [{after: 1d, topic: x}]
)";
  EXPECT_THAT(
      ConfigErrors(yaml),
      ElementsAre(
          "t.yaml:5:5: error: missing required key 'from' in cadence 'sw' (trigger: switch)",
          "t.yaml:5:5: error: missing required key 'to' in cadence 'sw' (trigger: switch)",
          "t.yaml:7:15: error: 'products' applies only to trigger: purchase (a switch uses "
          "from/to)",
          "t.yaml:10:11: error: 'from' applies only to trigger: switch"));
}

TEST(LoaderTest, LastTierMustMatchEveryBuyer) {
  std::string yaml(kMinimal);
  yaml += "tiers:\n  - {name: vip, min_spend: 100}\n";
  EXPECT_THAT(ConfigErrors(yaml),
              ElementsAre("t.yaml:11:5: error: the last tier must have no conditions, so "
                          "that every buyer gets a tier"));
}

// Found by tests/fuzz/config_fuzz: with no tier left to check, the check
// of the last one read before an empty vector.
TEST(LoaderTest, TiersThatAreAllRefusedAreErrorsNotACrash) {
  std::string yaml(kMinimal);
  yaml += "tiers: [vip, 3]\n";
  EXPECT_THAT(ConfigErrors(yaml), ElementsAre("t.yaml:10:9: error: a tier must be a map",
                                              "t.yaml:10:14: error: a tier must be a map"));
}

TEST(LoaderTest, WrongShapes) {
  constexpr std::string_view yaml = R"(version: 1
products: [daily]
sinks: {name: q}
cadences:
  - just-a-string
)";
  EXPECT_THAT(
      ConfigErrors(yaml),
      ElementsAre(
          "t.yaml:2:11: error: products must be a non-empty map of product name to {supply_days}",
          "t.yaml:3:8: error: sinks must be a non-empty list of {name, type, ...}",
          "t.yaml:5:5: error: a cadence must be a map"));
}

TEST(LoaderTest, NegativeRunoutOffsetAndExplicitStepIds) {
  std::string yaml(R"(version: 1
products: {daily: {supply_days: 15}}
sinks: [{name: q, type: queue}]
cadences:
  - name: r
    steps:
      - {anchor: runout, after: -3d, topic: soon}
      - {id: soon-again, anchor: runout, after: -1d, topic: soon}
)");
  LoadResult r = LoadRulesString(yaml, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  EXPECT_EQ(r.rules->cadences[0].steps[0].after.count, -3);
  EXPECT_EQ(r.rules->cadences[0].steps[1].id, "soon-again");
}

TEST(LoaderTest, UnreadableFile) {
  LoadResult r = LoadRulesFile("/nonexistent/touchpoint.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString(),
              ::testing::Eq("/nonexistent/touchpoint.yaml:1:1: error: cannot read the file: No "
                            "such file or directory"));
}

TEST(LoaderTest, OperationsKeys) {
  LoadResult r = LoadRulesString(
      "log: {level: debug}\nretention: {touchpoints: 400d}\n" + std::string(kMinimal), "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  EXPECT_EQ(r.rules->log_level, "debug");
  EXPECT_EQ(r.rules->retention, (Duration{400, Duration::Unit::kDays}));
  EXPECT_TRUE(r.rules->auth_tokens.empty());
  EXPECT_EQ(r.rules->sha256.size(), 64u);
  EXPECT_NE(r.rules->sha256, LoadRulesString(std::string(kMinimal), "t.yaml").rules->sha256);

  EXPECT_THAT(
      ConfigErrors("log: {level: loud, colour: true}\n"
                   "retention: {touchpoints: 30m}\n"
                   "auth: {token_file: /no/such/token}\n" +
                   std::string(kMinimal)),
      ElementsAre(HasSubstr("t.yaml:1:14: error: log level must be trace, debug, info, "
                            "warn or error, got 'loud'"),
                  HasSubstr("t.yaml:1:20: error: unknown key 'colour'"),
                  HasSubstr("t.yaml:2:26: error: retention touchpoints must be longer "
                            "than misfire_grace"),
                  HasSubstr("t.yaml:3:20: error: cannot read token_file '/no/such/token'")));
}

// A frequency cap counts every fire of its period from the touchpoints
// retention keeps: retention shorter than the period would let the cap
// count fewer fires than were sent.
TEST(LoaderTest, RetentionKeepsEveryFireACapCounts) {
  auto with = [](const std::string& retention, const std::string& per) {
    return "retention: {touchpoints: " + retention + "}\nfrequency_cap: {max: 1, per: " + per +
           "}\noutcomes: {attribution_window: 1h}\n" + std::string(kMinimal);
  };
  EXPECT_THAT(ConfigErrors(with("2d", "month")),
              ElementsAre(HasSubstr("t.yaml:1:26: error: retention touchpoints (2d) must be at "
                                    "least 745h with a frequency_cap per month")));
  EXPECT_THAT(ConfigErrors(with("744h", "month")), ElementsAre(HasSubstr("at least 745h")));
  EXPECT_THAT(ConfigErrors(with("7d", "week")), ElementsAre(HasSubstr("at least 169h")));
  EXPECT_THAT(ConfigErrors(with("1d", "day")), ElementsAre(HasSubstr("at least 25h")));
  for (const auto& [retention, per] : {std::pair{"745h", "month"}, std::pair{"32d", "month"},
                                       std::pair{"169h", "week"}, std::pair{"2d", "day"}}) {
    LoadResult r = LoadRulesString(with(retention, per), "t.yaml");
    EXPECT_TRUE(r.ok()) << retention << " " << per << ": " << r.errors.front().ToString();
  }
  // Every cap counts, whatever order they come in.
  EXPECT_THAT(ConfigErrors("retention: {touchpoints: 10d}\noutcomes: {attribution_window: 1h}\n"
                           "frequency_cap:\n"
                           "  - {max: 2, per: day}\n  - {max: 3, per: month}\n" +
                           std::string(kMinimal)),
              ElementsAre(HasSubstr("per month")));
}

// A repurchase is credited to a fire within the attribution window:
// retention must keep those fires, whichever comes first in the file.
TEST(LoaderTest, RetentionKeepsEveryFireARepurchaseIsCreditedTo) {
  EXPECT_THAT(ConfigErrors("retention: {touchpoints: 2d}\n" + std::string(kMinimal)),
              ElementsAre(HasSubstr("retention touchpoints (2d) must be at least 169h with "
                                    "outcomes.attribution_window 7d")));
  EXPECT_THAT(ConfigErrors("retention: {touchpoints: 40d}\noutcomes: {attribution_window: 40d}\n" +
                           std::string(kMinimal)),
              ElementsAre(HasSubstr("at least 961h")));
  // Rounded up: 90 minutes and an hour need 3h, not 2h.
  EXPECT_THAT(ConfigErrors("retention: {touchpoints: 2h}\noutcomes: {attribution_window: 90m}\n" +
                           std::string(kMinimal)),
              ElementsAre(HasSubstr("at least 3h")));
  for (const char* ok : {"retention: {touchpoints: 169h}\n",
                         "outcomes: {attribution_window: 1d}\nretention: {touchpoints: 25h}\n"}) {
    LoadResult r = LoadRulesString(ok + std::string(kMinimal), "t.yaml");
    EXPECT_TRUE(r.ok()) << ok << r.errors.front().ToString();
  }
}

}  // namespace
}  // namespace tp
