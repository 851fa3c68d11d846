// The shipped unit, with this build's paths, checked by systemd's own tools:
// `systemd-analyze verify` and `systemd-analyze security` (offline); and the
// shipped Prometheus alert rules, checked by promtool.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "temp_dir.h"

namespace tp {
namespace {

// Runs `command` through the shell; its exit status and combined output.
std::pair<int, std::string> RunShell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class SystemdUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(TP_UNIT_TEMPLATE);
    std::stringstream text;
    text << in.rdbuf();
    std::string unit = text.str();
    ASSERT_FALSE(unit.empty()) << TP_UNIT_TEMPLATE;
    const std::string sbindir = std::filesystem::path(TP_DAEMON_BINARY).parent_path().string();
    unit = std::regex_replace(unit, std::regex("@TP_SBINDIR@"), sbindir);
    unit = std::regex_replace(unit, std::regex("@TP_CONFIG_DIR@"), "/etc/touchpoint");
    unit = std::regex_replace(unit, std::regex("@TP_DOCDIR@"), "/usr/share/doc/touchpoint");
    ASSERT_EQ(unit.find("@TP_"), std::string::npos) << "an unfilled placeholder:\n" << unit;
    path_ = dir_.path() + "/touchpointd.service";
    std::ofstream(path_) << unit;
    unit_ = unit;
  }

  testing::TempDir dir_;
  std::string path_;
  std::string unit_;
};

TEST_F(SystemdUnitTest, VerifiesClean) {
  auto [status, out] = RunShell("systemd-analyze verify " + path_);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze verify had remarks";
}

TEST_F(SystemdUnitTest, SecurityExposureIsAtMostTwoAndAHalf) {
  auto [status, out] = RunShell("systemd-analyze security --offline=true --no-pager " + path_);
  ASSERT_EQ(status, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Overall exposure level for [^:]+: ([0-9.]+)")))
      << out;
  EXPECT_LE(std::stod(m[1]), 2.5) << out;
}

TEST_F(SystemdUnitTest, IsANotifyServiceThatDoesNotRestartOnABadConfig) {
  EXPECT_THAT(unit_, ::testing::HasSubstr("\nType=notify\n"));
  EXPECT_THAT(unit_, ::testing::HasSubstr("\nRestartPreventExitStatus=78\n"));
  EXPECT_THAT(unit_, ::testing::HasSubstr("\nExecReload=/bin/kill -HUP $MAINPID\n"));
  EXPECT_THAT(unit_, ::testing::HasSubstr("\nWatchdogSec="));
}

TEST(AlertRulesTest, TheShippedRulesPassPromtool) {
  auto [status, out] = RunShell(std::string("promtool check rules ") + TP_ALERT_RULES);
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("SUCCESS"));
}

// Runs promtool's rule test on the shipped rules: `tests` is the YAML after
// `rule_files`, with its input series and expected alerts.
void ExpectPromtoolRuleTestPasses(const std::string& tests) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/rules_test.yml";
  std::ofstream(path) << "rule_files: ['" << TP_ALERT_RULES << "']\n" << tests;
  auto [status, out] = RunShell("promtool test rules " + path);
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("SUCCESS"));
}

// A sink failing for 15 minutes alerts while its events wait, not when
// its outbox is empty (a daemon whose last try failed stays half-open
// until it has something to send, though another daemon delivered it).
TEST(AlertRulesTest, ASinkFailsOnlyWhileItsEventsWait) {
  ExpectPromtoolRuleTestPasses(R"(evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'touchpoint_sink_circuit_open{instance="a", job="touchpoint", sink="crm"}'
        values: '1x30'
      - series: 'touchpoint_outbox_events{instance="a", job="touchpoint", sink="crm"}'
        values: '0x30'
      - series: 'touchpoint_sink_circuit_open{instance="b", job="touchpoint", sink="crm"}'
        values: '1x30'
      - series: 'touchpoint_outbox_events{instance="b", job="touchpoint", sink="crm"}'
        values: '8x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: TouchpointSinkFailing
        exp_alerts:
          - exp_labels: {severity: ticket, instance: b, job: touchpoint, sink: crm}
            exp_annotations:
              summary: "Sink crm has been failing for 15 minutes; its events wait in the outbox"
)");
}

// Connections busy with a request at 90% of the most for five minutes
// alert (at the most, the scrape itself would wait); idle ones do not
// count (a new client takes an idle one's place), and below 90%, none.
TEST(AlertRulesTest, ConnectionsNearlyAllBusyForFiveMinutesAlert) {
  ExpectPromtoolRuleTestPasses(R"(evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'touchpoint_http_connections{instance="a", job="touchpoint"}'
        values: '480x30'
      - series: 'touchpoint_http_connections_idle{instance="a", job="touchpoint"}'
        values: '10x30'
      - series: 'touchpoint_http_max_connections{instance="a", job="touchpoint"}'
        values: '512x30'
      - series: 'touchpoint_http_connections{instance="b", job="touchpoint"}'
        values: '450x30'
      - series: 'touchpoint_http_connections_idle{instance="b", job="touchpoint"}'
        values: '0x30'
      - series: 'touchpoint_http_max_connections{instance="b", job="touchpoint"}'
        values: '512x30'
      - series: 'touchpoint_http_connections{instance="c", job="touchpoint"}'
        values: '512x30'
      - series: 'touchpoint_http_connections_idle{instance="c", job="touchpoint"}'
        values: '400x30'
      - series: 'touchpoint_http_max_connections{instance="c", job="touchpoint"}'
        values: '512x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: TouchpointConnectionsNearlyFull
        exp_alerts:
          - exp_labels: {severity: ticket, instance: a, job: touchpoint}
            exp_annotations:
              summary: "touchpointd on a has nearly http.max_connections connections busy (with a request, or closing after an error answer): new clients will wait"
              description: "Find who holds them (ss -tn on the API's port): slow clients sending their requests, many clients at once, or a flood. Raise http.max_connections (a restart) if they are legitimate."
)");
}

}  // namespace
}  // namespace tp
