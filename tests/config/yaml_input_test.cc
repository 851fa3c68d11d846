// The config loader on YAML that is not a config: a second document, a
// stray comma, tags, an alias that refers to itself, tabs, durations past
// a hundred years, a directory. Each is an error naming where it is, never
// a hang or a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "harness.h"
#include "minimal_config.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::ConfigErrors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kMinimal;

TEST(LoaderTest, ASecondDocumentIsAnErrorNotIgnored) {
  EXPECT_THAT(ConfigErrors(std::string(kMinimal) + "---\nversion: 2\n"),
              ElementsAre(HasSubstr("t.yaml:11:1: error: a second YAML document starts here")));
}

// Found by tests/fuzz/config_fuzz: yaml-cpp 0.7's LoadAll() loops forever,
// allocating, on a lone ',' (jbeder/yaml-cpp#1040).
TEST(LoaderTest, AStrayCommaIsASyntaxErrorNotAHang) {
  EXPECT_THAT(ConfigErrors(","), ElementsAre("t.yaml:1:1: error: YAML syntax: a ',' outside a flow "
                                             "[list] or {map}"));
  EXPECT_THAT(ConfigErrors("# the rules\n  , steps: [{after: 1d}]\n"),
              ElementsAre("t.yaml:2:3: error: YAML syntax: a ',' outside a flow [list] or {map}"));
  EXPECT_THAT(ConfigErrors(std::string(kMinimal) + "---\n,\n"),
              ElementsAre(HasSubstr("t.yaml:11:1: error: a second YAML document starts here")));
}

TEST(LoaderTest, TagsAreRefused) {
  std::string yaml(kMinimal);
  yaml.replace(yaml.find("{supply_days: 15}"), 17, "{supply_days: !!str 15}");
  EXPECT_THAT(ConfigErrors(yaml),
              ElementsAre(HasSubstr("YAML tags like 'tag:yaml.org,2002:str' are "
                                    "not supported")));
}

TEST(LoaderTest, AnAliasThatRefersToItselfIsAnErrorNotACrash) {
  EXPECT_THAT(ConfigErrors(std::string(kMinimal) + "log: &x [1, *x]\n"),
              ElementsAre(HasSubstr("does an alias refer to itself?")));
  // Billion laughs: ten levels of ten aliases each.
  std::string laughs = std::string(kMinimal) + "x0: &a0 [lol]\n";
  for (int i = 1; i <= 10; ++i) {
    laughs += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", *a" : "*a") + std::to_string(i - 1);
    laughs += "]\n";
  }
  const auto errors = ConfigErrors(laughs);
  ASSERT_FALSE(errors.empty());
  EXPECT_THAT(errors.front(), HasSubstr("too many nodes"));
}

TEST(LoaderTest, ATabInTheIndentationIsNamed) {
  const auto errors = ConfigErrors("version: 1\nproducts:\n\tdaily: {supply_days: 15}\n");
  EXPECT_THAT(errors,
              ::testing::Contains(HasSubstr(
                  "t.yaml:3:1: error: a tab in the indentation: YAML indents with spaces")));
}

TEST(LoaderTest, DurationsAreAtMostAHundredYears) {
  std::string yaml(kMinimal);
  yaml.replace(yaml.find("after: 1d"), 9, "after: 999999999d");
  EXPECT_THAT(ConfigErrors(yaml),
              ElementsAre(HasSubstr("after must be at most 36500d (100 years)")));
  yaml = std::string(kMinimal) + "misfire_grace: 876001h\n";
  EXPECT_THAT(ConfigErrors(yaml), ElementsAre(HasSubstr("misfire_grace must be at most 36500d")));
  yaml = std::string(kMinimal) + "misfire_grace: 876000h\n";
  EXPECT_TRUE(LoadRulesString(yaml, "t.yaml").ok());
}

TEST(LoaderTest, ADirectoryIsNamedAsSuch) {
  testing::TempDir dir;
  LoadResult r = LoadRulesFile(dir.path());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(),
            dir.path() + ":1:1: error: cannot read the file: it is a directory");
}

}  // namespace
}  // namespace tp
