// End-to-end operations: reload on a real SIGHUP, systemd's notify protocol
// on a real datagram socket, log levels and the journal format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <ctime>
#include <thread>

#include "child_process.h"
#include "core/clock.h"
#include "daemon_process.h"
#include "notify_socket.h"
#include "run_ctl.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::NotifySocket;

// Before the reload: one step fires at once, three wait.
const std::vector<std::string> kStepsBefore = {
    "{after: 1s, topic: soon}", "{after: 1d, topic: tomorrow}", "{after: 3d, topic: later}",
    "{after: 5d, topic: dropped}"};

// After: `soon` changed (but fired already), `tomorrow` moved, `later` the
// same, `dropped` gone, `added` new.
const std::vector<std::string> kStepsAfter = {
    "{after: 2s, topic: soon}", "{after: 2d, topic: tomorrow}", "{after: 3d, topic: later}",
    "{after: 10d, topic: added}"};

std::string OpsConfig(const std::vector<std::string>& steps) {
  testing::TestConfig config;
  for (const std::string& step : steps) config.StepYaml(step);
  return config.Yaml();
}

std::string UtcText(Instant t) { return FormatRfc3339(t, UtcZone()); }

class OpsTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  DaemonProcess& Make(std::string_view config) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    return *daemon_;
  }

  // Waits until the log holds `text` `count` times (20 s at most).
  bool WaitForLog(const std::string& text, int count = 1) {
    for (int i = 0; i < 2000; ++i) {
      const std::string log = daemon_->log();
      int seen = 0;
      for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++seen;
      if (seen >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no '" << text << "' (x" << count << ") in:\n" << daemon_->log();
    return false;
  }

  json Touchpoint(const json& buyer, const std::string& topic) {
    for (const auto& t : buyer["touchpoints"]) {
      if (t["topic"] == topic) return t;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(OpsTest, SighupReplansPendingTouchpointsAndNeverRefires) {
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  ASSERT_TRUE(d.Start());
  const Instant bought = SystemClock().Now() - std::chrono::minutes(1);
  auto [status, body] = d.Call("POST", "/v1/purchases",
                               {{"order_id", "o1"},
                                {"buyer_id", "lin"},
                                {"product", "daily"},
                                {"quantity", 1},
                                {"amount", 20},
                                {"purchased_at", UtcText(bought)}});
  ASSERT_EQ(status, 200) << body;
  // `soon` fires at once; take it off the queue.
  json leased;
  for (int i = 0; i < 500 && (leased.is_null() || leased["messages"].empty()); ++i) {
    leased = d.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}}).second;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(leased["messages"].size(), 1u) << leased;
  EXPECT_EQ(leased["messages"][0]["event"]["data"]["topic"], "soon");
  const std::string sha_before = d.Call("GET", "/healthz").second["config"]["sha256"];

  testing::WriteFile(Path("touchpoint.yaml"), OpsConfig(kStepsAfter));
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reloaded " + Path("touchpoint.yaml")));
  // The re-plan runs in the background and says what it did when done.
  ASSERT_TRUE(WaitForLog("re-planned pending touchpoints of 1 buyer in"));
  EXPECT_THAT(d.log(), HasSubstr("1 moved, 1 added, 1 cancelled (rules changed)"));

  const json buyer = d.Call("GET", "/v1/buyers/lin").second;
  const json soon = Touchpoint(buyer, "soon");
  EXPECT_EQ(soon["status"], "fired");
  const json tomorrow = Touchpoint(buyer, "tomorrow");
  EXPECT_EQ(tomorrow["status"], "pending");
  EXPECT_EQ(tomorrow["due_at"], UtcText(bought + std::chrono::hours(48)));
  EXPECT_THAT(tomorrow["history"].back()["reason"].get<std::string>(),
              HasSubstr("rules changed: due " + UtcText(bought + std::chrono::hours(48)) +
                        " (was " + UtcText(bought + std::chrono::hours(24)) + ")"));
  const json later = Touchpoint(buyer, "later");
  EXPECT_EQ(later["status"], "pending");
  EXPECT_EQ(later["due_at"], UtcText(bought + std::chrono::hours(72)));
  EXPECT_TRUE(later["history"].empty()) << later;
  const json dropped = Touchpoint(buyer, "dropped");
  EXPECT_EQ(dropped["status"], "cancelled");
  EXPECT_EQ(dropped["reason"], "rules changed");
  const json added = Touchpoint(buyer, "added");
  EXPECT_EQ(added["status"], "pending");
  EXPECT_EQ(added["due_at"], UtcText(bought + std::chrono::hours(240)));

  // `soon` under the new rules is due a second later than it fired: the same
  // id, so it is not fired again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto again = d.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}, {"visibility_s", 1}});
  EXPECT_TRUE(again.second["messages"].empty()) << again.second;

  const json health = d.Call("GET", "/healthz").second;
  EXPECT_EQ(health["status"], "ok");
  EXPECT_NE(health["config"]["sha256"], sha_before);
  EXPECT_EQ(health["config"]["last_reload"]["ok"], true);
  // The same file again: nothing to re-plan.
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("planning rules unchanged, nothing re-planned"));
}

TEST_F(OpsTest, BadReloadKeepsTheOldRulesAndSaysWhy) {
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  ASSERT_TRUE(d.Start());
  const std::string sha = d.Call("GET", "/healthz").second["config"]["sha256"];

  // Two mistakes, each reported with its line.
  testing::WriteFile(Path("touchpoint.yaml"),
                     OpsConfig({"{after: 1x, topic: soon}", "{after: 1d}"}));
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reload failed"));
  EXPECT_THAT(d.log(), HasSubstr(Path("touchpoint.yaml") + ":11:"));
  EXPECT_THAT(d.log(), HasSubstr(Path("touchpoint.yaml") + ":12:"));
  EXPECT_THAT(d.log(), HasSubstr("still running the config loaded at"));

  json health = d.Call("GET", "/healthz").second;
  EXPECT_EQ(health["status"], "degraded");
  EXPECT_EQ(health["config"]["sha256"], sha);
  EXPECT_EQ(health["config"]["last_reload"]["ok"], false);
  ASSERT_EQ(health["config"]["last_reload"]["errors"].size(), 2u) << health;
  EXPECT_THAT(health["config"]["last_reload"]["errors"][0].get<std::string>(), HasSubstr(":11:"));

  // Still planning by the old rules: four steps.
  auto [status, body] = d.Call("POST", "/v1/purchases",
                               {{"order_id", "o2"},
                                {"buyer_id", "kai"},
                                {"product", "daily"},
                                {"quantity", 1},
                                {"amount", 20},
                                {"purchased_at", UtcText(SystemClock().Now())}});
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["touchpoints_planned"], 4);

  // Fixed: the next reload clears the failure.
  testing::WriteFile(Path("touchpoint.yaml"), OpsConfig(kStepsAfter));
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reloaded " + Path("touchpoint.yaml")));
  health = d.Call("GET", "/healthz").second;
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["config"]["last_reload"]["ok"], true);
  EXPECT_FALSE(health["config"]["last_reload"].contains("errors"));
}

std::int64_t MonotonicUsec() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000;
}

TEST_F(OpsTest, SpeaksSystemdsNotifyProtocol) {
  NotifySocket systemd(Path("notify.sock"));
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  d.SetEnv("NOTIFY_SOCKET", Path("notify.sock"));
  d.SetEnv("WATCHDOG_USEC", "200000");
  ASSERT_TRUE(d.Start());

  const std::string ready = systemd.NextState();
  EXPECT_THAT(ready, HasSubstr("READY=1"));
  EXPECT_THAT(ready, HasSubstr("STATUS=listening on " + d.address()));
  // Pings every 100 ms (half of WATCHDOG_USEC), from the running loop.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(systemd.Next(std::chrono::seconds(1)), "WATCHDOG=1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));

  const std::int64_t before = MonotonicUsec();
  d.Signal(SIGHUP);
  const std::string reloading = systemd.NextState();
  EXPECT_THAT(reloading, HasSubstr("RELOADING=1"));
  const auto at = reloading.find("MONOTONIC_USEC=");
  ASSERT_NE(at, std::string::npos) << reloading;
  const std::int64_t usec = std::stoll(reloading.substr(at + 15));
  EXPECT_GE(usec, before);
  EXPECT_LE(usec, MonotonicUsec());
  EXPECT_THAT(systemd.NextState(), HasSubstr("READY=1"));

  // A failed reload ends in READY=1 too (the old rules serve), saying so.
  testing::WriteFile(Path("touchpoint.yaml"), "version: 2\n");
  d.Signal(SIGHUP);
  EXPECT_THAT(systemd.NextState(), HasSubstr("RELOADING=1"));
  EXPECT_THAT(systemd.NextState(), HasSubstr("STATUS=reload failed"));

  d.Signal(SIGTERM);
  EXPECT_THAT(systemd.NextState(), HasSubstr("STOPPING=1"));
  EXPECT_EQ(d.Wait(), 0);
}

TEST_F(OpsTest, NoWatchdogPingsWhenTheWatchdogIsForAnotherProcess) {
  NotifySocket systemd(Path("notify.sock"));
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  d.SetEnv("NOTIFY_SOCKET", Path("notify.sock"));
  d.SetEnv("WATCHDOG_USEC", "200000");
  d.SetEnv("WATCHDOG_PID", "1");
  ASSERT_TRUE(d.Start());
  EXPECT_THAT(systemd.NextState(), HasSubstr("READY=1"));
  EXPECT_EQ(systemd.Next(std::chrono::milliseconds(400)), "");
}

TEST_F(OpsTest, LogLevelComesFromTheConfigOrTheCommandLine) {
  DaemonProcess& d = Make("log: {level: warn}\n" + OpsConfig(kStepsBefore));
  ASSERT_TRUE(d.Start());  // the "listening on" line is logged before the level applies
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
  EXPECT_THAT(d.log(), Not(HasSubstr("stopping: finishing requests")));

  DaemonProcess verbose(Path("touchpoint.yaml"), Path("tp.db"), Path("verbose.log"));
  verbose.AddArgs({"--log-level", "debug"});
  ASSERT_TRUE(verbose.Start());
  auto [status, body] = verbose.Call("POST", "/v1/purchases",
                                     {{"order_id", "o3"},
                                      {"buyer_id", "ana"},
                                      {"product", "daily"},
                                      {"quantity", 1},
                                      {"amount", 20},
                                      {"purchased_at", UtcText(SystemClock().Now())}});
  ASSERT_EQ(status, 200) << body;
  for (int i = 0; i < 500 && verbose.log().find("scheduler: fired 1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(verbose.log(), HasSubstr(" debug scheduler: fired 1"));
  verbose.Signal(SIGTERM);
  EXPECT_EQ(verbose.Wait(), 0);
}

TEST_F(OpsTest, UnderTheJournalLinesCarryPrioritiesAndNoTimestamps) {
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  // systemd names the stream it connected to stderr: here, the log file.
  testing::WriteFile(Path("daemon.log"), "");
  struct stat st {};
  ASSERT_EQ(::stat(Path("daemon.log").c_str(), &st), 0);
  d.SetEnv("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
  ASSERT_TRUE(d.Start());
  testing::WriteFile(Path("touchpoint.yaml"), "version: 2\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reload failed"));
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
  std::istringstream lines(d.log());
  std::string line;
  int info = 0, error = 0;
  while (std::getline(lines, line)) {
    ASSERT_TRUE(line.starts_with("<6>") || line.starts_with("<3>") || line.starts_with("<4>"))
        << line;
    info += line.starts_with("<6>");
    error += line.starts_with("<3>");
  }
  EXPECT_GE(info, 2);   // listening, stopped
  EXPECT_GE(error, 2);  // the error and the summary
}

// The value of the sample `series` (name and labels as printed), or -1.
using testing::Sample;

TEST_F(OpsTest, MetricsPassPromtoolAndCountWhatHappened) {
  testing::WriteFile(Path("crm.secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  // A webhook nobody listens on: its attempts fail, its circuit opens.
  std::string config = OpsConfig(kStepsBefore);
  config.replace(config.find("sinks:\n"), 7,
                 "sinks:\n  - {name: crm, type: webhook, url: \"http://127.0.0.1:" +
                     std::to_string(testing::PortForLater()) +
                     "/hook\", secret_file: crm.secret, retry: {initial: 1s}}\n");
  DaemonProcess& d = Make(config);
  ASSERT_TRUE(d.Start());
  const std::string bought = UtcText(SystemClock().Now() - std::chrono::minutes(1));
  auto purchase = [&](const std::string& order, const std::string& buyer) {
    return json{{"order_id", order}, {"buyer_id", buyer}, {"product", "daily"},
                {"quantity", 1},     {"amount", 20},      {"purchased_at", bought}};
  };
  ASSERT_EQ(d.Call("POST", "/v1/purchases", purchase("o1", "lin")).first, 200);
  ASSERT_EQ(d.Call("POST", "/v1/purchases", purchase("o1", "lin")).first, 200);  // duplicate
  ASSERT_EQ(d.Call("POST", "/v1/purchases", json{{"order_id", "o2"}}).first, 400);
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", json::array({purchase("o3", "kai"), purchase("o1", "x")}))
          .first,
      409);
  ASSERT_EQ(d.Call("POST", "/v1/purchases", purchase("o4", "ana")).first, 200);
  ASSERT_EQ(d.Call("POST", "/v1/buyers/ana/opt-out").first, 200);
  testing::WriteFile(Path("touchpoint.yaml"), "version: 2\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reload failed"));

  std::string text;
  for (int i = 0; i < 500; ++i) {
    auto r = d.http().Request("GET", "/metrics");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->content_type, "text/plain; version=0.0.4; charset=utf-8");
    text = r->body;
    if (Sample(text, R"(touchpoint_deliveries_total{sink="crm",outcome="retried"})") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  testing::WriteFile(Path("metrics.txt"), text);
  const std::string check =
      "promtool check metrics < " + Path("metrics.txt") + " > " + Path("promtool.out") + " 2>&1";
  EXPECT_EQ(std::system(check.c_str()), 0) << testing::ReadFile(Path("promtool.out")) << text;
  EXPECT_EQ(testing::ReadFile(Path("promtool.out")), "") << "promtool had remarks";

  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_requests_total{outcome="accepted"})"), 3);
  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_requests_total{outcome="invalid"})"), 1);
  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_requests_total{outcome="conflict"})"), 1);
  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_purchases_total{outcome="accepted"})"), 2);
  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_purchases_total{outcome="duplicate"})"), 1);
  EXPECT_EQ(Sample(text, R"(touchpoint_ingest_purchases_total{outcome="conflict"})"), 1);
  // o1 and o4 planned four each; the 409 request's o3 rolled back uncounted.
  EXPECT_EQ(Sample(text, R"(touchpoint_touchpoints_planned_total{cadence="trust"})"), 8);
  EXPECT_EQ(Sample(text, R"(touchpoint_touchpoints_fired_total{cadence="trust"})"), 2);
  EXPECT_EQ(Sample(text, R"(touchpoint_touchpoints_suppressed_total{cadence="trust"})"), 3);
  EXPECT_EQ(Sample(text, "touchpoint_touchpoints_pending"), 3);
  EXPECT_EQ(Sample(text, "touchpoint_fire_lateness_seconds_count"), 2);
  EXPECT_GE(Sample(text, R"(touchpoint_delivery_duration_seconds_count{sink="crm"})"), 1);
  EXPECT_EQ(Sample(text, R"(touchpoint_config_reloads_total{result="failure"})"), 1);
  EXPECT_EQ(Sample(text, "touchpoint_config_last_reload_successful"), 0);
  EXPECT_EQ(Sample(text, R"(touchpoint_dead_letters{sink="crm"})"), 0);
  EXPECT_GE(Sample(text, R"(touchpoint_outbox_events{sink="crm"})"), 1);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1e6);
  EXPECT_THAT(text, HasSubstr("touchpoint_build_info{version=\""));
  const std::string sha = d.Call("GET", "/healthz").second["config"]["sha256"];
  EXPECT_EQ(Sample(text, "touchpoint_config_info{sha256=\"" + sha + "\"}"), 1);
}

TEST_F(OpsTest, BackupCopiesALiveDatabaseConsistently) {
  DaemonProcess& d = Make(OpsConfig(kStepsBefore));
  ASSERT_TRUE(d.Start());
  const std::string bought = UtcText(SystemClock().Now());
  auto batch = [&](int from) {
    json items = json::array();
    for (int i = from; i < from + 100; ++i) {
      items.push_back({{"order_id", "o" + std::to_string(i)},
                       {"buyer_id", "b" + std::to_string(i)},
                       {"product", "daily"},
                       {"quantity", 1},
                       {"amount", 20},
                       {"purchased_at", bought}});
    }
    return items;
  };
  ASSERT_EQ(d.Call("POST", "/v1/purchases", batch(0)).first, 200);
  // Ingest keeps going on its own connection while the backup runs.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    auto client = HttpClient::Create(d.url());
    for (int from = 100; !done && from < 100'000; from += 100) {
      (void)(*client)->Request("POST", "/v1/purchases", batch(from).dump());
    }
  });
  auto backup = testing::Ctl({"backup", "--database", Path("tp.db"), Path("copy.db")});
  done = true;
  writer.join();
  EXPECT_EQ(backup.exit_code, 0) << backup.err;
  EXPECT_THAT(backup.out, HasSubstr("backed up " + Path("tp.db") + " to " + Path("copy.db")));
  EXPECT_THAT(backup.out, HasSubstr("integrity ok"));
  auto again = testing::Ctl({"backup", "--database", Path("tp.db"), Path("copy.db")});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("exists"));

  // Restore: a daemon on the copy has every purchase of the first batch, and
  // every purchase it has is whole (its four touchpoints).
  DaemonProcess restored(Path("touchpoint.yaml"), Path("copy.db"), Path("restored.log"));
  ASSERT_TRUE(restored.Start());
  auto [status, buyer] = restored.Call("GET", "/v1/buyers/b99");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(buyer["touchpoints"].size(), 4u);
  EXPECT_EQ(testing::Ctl({"backup", "--database", Path("copy.db"), Path("check.db")}).exit_code, 0);
}

TEST_F(OpsTest, RetentionDeletesOldFinishedTouchpointsKeepingPurchases) {
  DaemonProcess& d = Make("retention: {touchpoints: 30d}\n" + OpsConfig(kStepsBefore));
  ASSERT_TRUE(d.Start());
  // Bought 60 days ago: every step was missed long ago and is skipped.
  auto [status, body] =
      d.Call("POST", "/v1/purchases",
             {{"order_id", "old"},
              {"buyer_id", "lin"},
              {"product", "daily"},
              {"quantity", 1},
              {"amount", 20},
              {"purchased_at", UtcText(SystemClock().Now() - std::chrono::hours(24 * 60))}});
  ASSERT_EQ(status, 200) << body;
  for (int i = 0; i < 500; ++i) {
    const json b = d.Call("GET", "/v1/buyers/lin").second;
    if (b["touchpoints"].size() == 4 && b["touchpoints"][3]["status"] == "skipped") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0);
  ASSERT_TRUE(d.Start());  // a pass runs at start
  ASSERT_TRUE(WaitForLog("retention: deleted 4 touchpoints finished before"));
  const json buyer = d.Call("GET", "/v1/buyers/lin").second;
  EXPECT_TRUE(buyer["touchpoints"].empty()) << buyer;
  EXPECT_EQ(buyer["purchases"].size(), 1u);  // purchases stay
  // The same order again is still a duplicate, not a new journey.
  auto resend = d.Call("POST", "/v1/purchases",
                       {{"order_id", "old"},
                        {"buyer_id", "lin"},
                        {"product", "daily"},
                        {"quantity", 1},
                        {"amount", 20},
                        {"purchased_at", buyer["purchases"][0]["purchased_at"]}});
  EXPECT_EQ(resend.second["duplicates"], 1) << resend.second;
  auto metrics = d.http().Request("GET", "/metrics");
  EXPECT_EQ(Sample(metrics->body, "touchpoint_retention_pruned_touchpoints_total"), 4);
}

}  // namespace
}  // namespace tp
