// `simulate --html`'s figures (SimDigest), `--compare`'s (RunDiff) and the
// page around them (SelfContainedPage), against what the same replay
// prints as JSON lines. The browser test (tests/browser/simulate_page.mjs)
// checks that the page draws them.
#include "simulate/digest.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "config/loader.h"
#include "core/base64.h"
#include "harness.h"
#include "simulate/html_report.h"
#include "simulate/run_diff.h"
#include "simulate/simulate.h"
#include "web/page.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::MustLoad;

std::string PlaybookText() {
  std::ifstream in(TP_PLAYBOOK_CONFIG);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

SimulateOptions PlaybookOptions() {
  SimulateOptions options;
  options.purchases_path = std::string(TP_TEST_DATA) + "/playbook/purchases.csv";
  return options;
}

std::vector<json> Lines(const std::shared_ptr<const Rules>& rules) {
  std::stringstream out;
  const SimulateResult r = Simulate(rules, PlaybookOptions(), out);
  EXPECT_TRUE(r.ok());
  std::vector<json> lines;
  std::string line;
  while (std::getline(out, line)) lines.push_back(json::parse(line));
  return lines;
}

json Digest(const std::shared_ptr<const Rules>& rules, RunDiff* diff = nullptr, bool b = false) {
  SimDigest digest(*rules);
  SimulateOptions options = PlaybookOptions();
  options.digest = &digest;
  if (diff != nullptr) {
    options.on_touchpoint = [diff, b](const TouchpointView& t) {
      b ? diff->AddB(t) : diff->AddA(t);
    };
  }
  std::stringstream out;
  const SimulateResult r = Simulate(rules, options, out);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(out.str(), "") << "a digest run prints no lines";
  return json::parse(digest.Json("playbook"));
}

TEST(SimDigestTest, CountsWhatTheLinesSay) {
  const auto rules = MustLoad(PlaybookText());
  const std::vector<json> lines = Lines(rules);
  const json d = Digest(rules);

  std::map<std::string, std::uint64_t> statuses;
  std::map<std::string, std::uint64_t> by_buyer;
  for (const json& t : lines) {
    ++statuses[t["status"].get<std::string>()];
    ++by_buyer[t["buyer_id"].get<std::string>()];
  }
  EXPECT_EQ(d["summary"]["touchpoints"], lines.size());
  EXPECT_EQ(d["summary"]["purchases"], 13);
  EXPECT_EQ(d["summary"]["buyers"], by_buyer.size());
  for (const auto& [status, n] : d["summary"]["statuses"].items()) {
    EXPECT_EQ(n.get<std::uint64_t>(), statuses[status]) << status;
  }
  std::uint64_t heat = 0, load = 0, held = 0, planned = 0, step_held = 0;
  for (const json& row : d["heatmap"]) {
    for (const json& n : row) heat += n.get<std::uint64_t>();
  }
  for (const json& series : d["load"]["fired"]) {
    for (const json& n : series) load += n.get<std::uint64_t>();
  }
  for (const json& n : d["load"]["held"]) held += n.get<std::uint64_t>();
  for (const json& step : d["funnel"]) {
    planned += step["planned"].get<std::uint64_t>();
    step_held += step["held"].get<std::uint64_t>();
  }
  EXPECT_EQ(heat, statuses["fired"]);
  EXPECT_EQ(load, statuses["fired"]);
  EXPECT_EQ(planned, lines.size());
  // WeCom's monthly cap holds one buyer's messages (simulate_playbook_test).
  EXPECT_GT(d["summary"]["cap_deferrals"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(held, d["summary"]["cap_deferrals"]);
  EXPECT_EQ(step_held, d["summary"]["cap_deferrals"]);
  // Buyer-local hours outside the send window (10:00-20:30) stay empty.
  for (const json& row : d["heatmap"]) {
    for (int h = 0; h < 24; ++h) {
      if (h < 10 || h > 20) {
        EXPECT_EQ(row[h], 0) << "hour " << h;
      }
    }
  }
  // Every journey holds every one of its buyer's touchpoints, in due order.
  ASSERT_FALSE(d["journeys"].empty());
  for (const json& j : d["journeys"]) {
    EXPECT_EQ(j["touchpoints"].size(), by_buyer[j["buyer"].get<std::string>()]) << j["buyer"];
    EXPECT_FALSE(j["purchases"].empty());
  }
  EXPECT_TRUE(d["outcomes"].is_null()) << "no events, no outcomes";
}

TEST(SimDigestTest, ReasonsAreGroupedWithoutTheirParticulars) {
  const json d = Digest(MustLoad(PlaybookText()));
  bool repurchased = false;
  for (const json& step : d["funnel"]) {
    for (const json& r : step["reasons"]) {
      const std::string reason = r["reason"];
      EXPECT_EQ(reason.find("order "), std::string::npos) << reason;
      EXPECT_FALSE(std::regex_search(reason, std::regex(" at [0-9]"))) << reason;
      repurchased = repurchased || (reason == "repurchased" && r["status"] == "cancelled");
    }
  }
  EXPECT_TRUE(repurchased) << d["funnel"].dump();
}

TEST(RunDiffTest, TheSameRulesChangeNothing) {
  const auto rules = MustLoad(PlaybookText());
  RunDiff diff;
  Digest(rules, &diff, false);
  diff.Seal();
  Digest(rules, &diff, true);
  const json j = json::parse(diff.Json());
  ASSERT_FALSE(j["steps"].empty());
  for (const json& s : j["steps"]) {
    EXPECT_EQ(s["a"], s["b"]) << s["key"];
    EXPECT_EQ(s["appear"], 0) << s["key"];
    EXPECT_EQ(s["disappear"], 0) << s["key"];
    EXPECT_EQ(s["moved"], 0) << s["key"];
  }
}

TEST(RunDiffTest, AStepTwoDaysLaterMovesByTwoDays) {
  std::string text = PlaybookText();
  const std::string from = "{after: 7d, topic: care-tips}";
  ASSERT_NE(text.find(from), std::string::npos);
  const auto a = MustLoad(text);
  text.replace(text.find(from), from.size(), "{after: 9d, topic: care-tips}");
  const auto b = MustLoad(text);
  RunDiff diff;
  Digest(a, &diff, false);
  diff.Seal();
  Digest(b, &diff, true);
  const json j = json::parse(diff.Json());
  std::map<std::string, json> steps;
  for (const json& s : j["steps"]) steps[s["key"]] = s;
  const json& care = steps.at("trust/care-tips");
  EXPECT_GT(care["moved"].get<int>(), 0);
  EXPECT_EQ(care["later"], care["moved"]);
  EXPECT_EQ(care["shift_hours"]["median"], 48.0);
  EXPECT_EQ(steps.at("trust/welcome-advisor")["moved"], 0);
}

std::string Sha256Base64(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

TEST(SelfContainedPageTest, DataCannotEndItsElementAndThePolicyNamesEveryScript) {
  const std::string page =
      SelfContainedPage("a <b> & c", R"({"label":"</script><script>alert(1)</script>"})",
                        {"touchpoint.css", "chart.min.js", "common.js"});
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_NE(page.find(R"(\u003c/script>\u003cscript>alert(1)\u003c/script>)"), std::string::npos);
  EXPECT_NE(page.find("<title>a &lt;b&gt; &amp; c</title>"), std::string::npos);
  // Every inline script and style is allowed by its hash, and nothing else.
  int checked = 0;
  for (const std::string tag : {"script", "style"}) {
    const std::string open = "<" + tag + ">", close = "</" + tag + ">";
    for (auto at = page.find(open); at != std::string::npos; at = page.find(open, at + 1)) {
      const auto begin = at + open.size(), end = page.find(close, begin);
      ASSERT_NE(end, std::string::npos);
      EXPECT_NE(page.find("'sha256-" + Sha256Base64(page.substr(begin, end - begin)) + "'"),
                std::string::npos)
          << tag << " #" << checked;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
  EXPECT_NE(page.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(page.find("unsafe-inline"), std::string::npos);
}

}  // namespace
}  // namespace tp
