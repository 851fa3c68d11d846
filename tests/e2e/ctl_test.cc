// End-to-end: the real touchpointctl against a real touchpointd, as an
// operator uses them (a terminal included, through a pseudo-terminal).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/clock.h"
#include "daemon_process.h"
#include "harness.h"
#include "run_ctl.h"
#include "temp_dir.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kCtlHeader =
    "order_id,buyer_id,product,quantity,amount,purchased_at,timezone\n";

std::string Recently() {
  return FormatRfc3339(SystemClock().Now() - std::chrono::minutes(5), UtcZone());
}

// Runs touchpointctl with stdout and stderr on a pseudo-terminal `columns`
// wide; everything it wrote.
std::string CtlOnTerminal(std::vector<std::string> args, unsigned short columns) {
  args.insert(args.begin(), TP_CTL_BINARY);
  winsize size{};
  size.ws_row = 24;
  size.ws_col = columns;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

class CtlTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  DaemonProcess& Start(const std::string& extra_config = "") {
    testing::WriteFile(Path("touchpoint.yaml"), std::string(testing::kBriefConfig) + extra_config);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(CtlTest, ImportTakesWhatSimulateTakesAndShowsBadValues) {
  DaemonProcess& d = Start();
  const std::string csv = Path("p.csv");
  // A byte order mark and CRLF endings, as spreadsheets write them.
  testing::WriteFile(csv, "\xEF\xBB\xBF" +
                              std::string(kCtlHeader.substr(0, kCtlHeader.size() - 1)) +
                              "\r\no1,lin,daily,2,240," + Recently() +
                              ",\r\no2,lin,daily,1,1e400," + Recently() + ",\r\n");
  auto r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr(csv + ": 2 lines, 1 accepted, 0 duplicates, 1 rejected"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":3: field 'amount': amount must be a number, got \"1e400\""));
  const auto simulated =
      testing::Ctl({"simulate", "--config", Path("touchpoint.yaml"), "--purchases", csv});
  EXPECT_THAT(simulated.err, HasSubstr(csv + ":3: error: field 'amount': amount must be a number "
                                             "from 0 to 1e12, got '1e400'"));
  // One line: "1 line", "1 duplicate".
  testing::WriteFile(csv, std::string(kCtlHeader) + "o1,lin,daily,2,240," + Recently() + ",\n");
  r = testing::Ctl({"import", "--url", d.url(), csv});
  // (a different purchased_at: a conflict, named by its field)
  EXPECT_THAT(r.err, HasSubstr("field 'purchased_at': order_id 'o1' was already recorded"));
  EXPECT_THAT(r.out, HasSubstr(": 1 line, 0 accepted, 0 duplicates, 1 rejected"));
}

// The attributes column: a JSON object goes as one (and is kept
// canonical); anything else is refused by the daemon, naming the field.
TEST_F(CtlTest, ImportSendsTheAttributesColumnAsAnObject) {
  DaemonProcess& d = Start();
  const std::string csv = Path("p.csv");
  testing::WriteFile(csv, std::string(kCtlHeader.substr(0, kCtlHeader.size() - 1)) +
                              ",attributes\no1,lin,daily,2,240," + Recently() +
                              ",,\"{ \"\"style\"\": \"\"natural\"\" }\"\no2,mei,daily,2,240," +
                              Recently() + ",,[1]\no3,ola,daily,2,240," + Recently() + ",,\n");
  auto r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 3 lines, 2 accepted, 0 duplicates, 1 rejected"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":3: field 'attributes': attributes must be a JSON object"));
  auto [status, lin] = d.Call("GET", "/v1/buyers/lin");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(lin["purchases"][0]["attributes"], (nlohmann::json{{"style", "natural"}}));
}

// Rows whose attributes make 1,000 of them larger than the daemon takes
// (4 MiB) go in smaller batches rather than a refused one.
TEST_F(CtlTest, ImportKeepsEachBatchUnderTheBodyLimit) {
  DaemonProcess& d = Start();
  const std::string csv = Path("p.csv");
  const std::string note = "\"{\"\"note\"\": \"\"" + std::string(5000, 'x') + "\"\"}\"";
  std::string text = std::string(kCtlHeader.substr(0, kCtlHeader.size() - 1)) + ",attributes\n";
  const std::string at = Recently();
  for (int i = 0; i < 1000; ++i) {
    text += "o" + std::to_string(i) + ",b" + std::to_string(i) + ",daily,1,10," + at + ",," + note +
            "\n";
  }
  testing::WriteFile(csv, text);
  auto r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 1000 lines, 1000 accepted, 0 duplicates, 0 rejected"));

  // Rows of dense attributes: 40 of 30,001 values each pass the 1,000,000
  // values a body may hold long before 4 MiB; they go in two batches.
  std::string zeros = "0";
  for (int i = 1; i < 30'000; ++i) zeros += ",0";
  text = std::string(kCtlHeader.substr(0, kCtlHeader.size() - 1)) + ",attributes\n";
  for (int i = 0; i < 40; ++i) {
    text += "dense" + std::to_string(i) + ",d" + std::to_string(i) + ",daily,1,10," + at +
            ",,\"{\"\"a\"\": [" + zeros + "]}\"\n";
  }
  testing::WriteFile(csv, text);
  r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 40 lines, 40 accepted, 0 duplicates, 0 rejected"));

  // A line that is not UTF-8 (it could not be sent as JSON) is rejected
  // alone, named by its line.
  testing::WriteFile(csv, std::string(kCtlHeader) + "x1,lin,daily,1,10," + at +
                              ",\nx2,l\xFFn,daily,1,10," + at + ",\n");
  r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 2 lines, 1 accepted, 0 duplicates, 1 rejected"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":3: the line is not valid UTF-8 (byte 5)"));
}

TEST_F(CtlTest, TheProgressBarFitsANarrowTerminal) {
  DaemonProcess& d = Start();
  const std::string csv = Path("p.csv");
  std::string rows(kCtlHeader);
  for (int i = 0; i < 50; ++i) {
    rows +=
        "o" + std::to_string(i) + ",b" + std::to_string(i) + ",daily,1,10," + Recently() + ",\n";
  }
  testing::WriteFile(csv, rows);
  const std::string out = CtlOnTerminal({"import", "--url", d.url(), "--batch", "5", csv}, 60);
  EXPECT_THAT(out, HasSubstr(": 50 lines, 50 accepted, 0 duplicates, 0 rejected"));
  // Every redraw starts at the line's start and stops short of the last
  // column, so the terminal never wraps it into a line per batch.
  std::size_t redraws = 0;
  for (std::size_t at = out.find('\r'); at != std::string::npos; at = out.find('\r', at + 1)) {
    const std::size_t end = out.find("\x1b[K", at);
    if (end == std::string::npos) continue;
    ++redraws;
    EXPECT_LE(end - at - 1, 59u) << out.substr(at + 1, end - at - 1);
  }
  EXPECT_GE(redraws, 10u) << out;
  EXPECT_THAT(out, HasSubstr("100%"));
}

TEST_F(CtlTest, BuyerIsATableInOneZoneWithDecimalAmounts) {
  DaemonProcess& d = Start();
  json p = {{"order_id", "an-order-id-much-longer-than-sixteen"},
            {"buyer_id", "lin"},
            {"product", "daily"},
            {"quantity", 2000},
            {"amount", 99999.99},
            {"purchased_at", "2099-12-31T23:00:00+08:00"}};
  ASSERT_EQ(d.Call("POST", "/v1/purchases", p).first, 200);
  p["order_id"] = "o2";
  p["amount"] = 1234567;
  p["quantity"] = 1;
  p["purchased_at"] = Recently();
  ASSERT_EQ(d.Call("POST", "/v1/purchases", p).first, 200);
  auto r = testing::Ctl({"buyer", "--url", d.url(), "lin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("buyer lin: tier novice, opted in; times in Asia/Shanghai"));
  EXPECT_THAT(r.out, HasSubstr("99999.99"));
  EXPECT_THAT(r.out, HasSubstr("1234567"));
  EXPECT_THAT(r.out, Not(HasSubstr("e+06")));
  EXPECT_THAT(r.out, HasSubstr("2099-12-31 23:00:00 +08:00  an-order-id-much-longer-than-sixteen"));
  // The purchases' columns line up under their header, whatever the ids.
  std::istringstream lines(r.out);
  std::string line, header, first, second;
  while (std::getline(lines, line) && !line.starts_with("2 purchases")) {
  }
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(header.find("ORDER"), second.find("an-order-id")) << r.out;
  EXPECT_EQ(header.find("ORDER"), first.find("o2")) << r.out;
  EXPECT_EQ(header.find("AMOUNT"), second.find("99999.99")) << r.out;
  // No T-separated or Z times: one format throughout.
  EXPECT_THAT(r.out, Not(HasSubstr("T0")));
  EXPECT_THAT(r.out, Not(HasSubstr("Z ")));
}

// A buyer with more purchases than the timeline shows: the last 100, and
// how many earlier ones are left out.
TEST_F(CtlTest, BuyerSaysHowManyEarlierPurchasesAreLeftOut) {
  DaemonProcess& d = Start();
  json all = json::array();
  for (int i = 0; i < 103; ++i) {
    all.push_back({{"order_id", "walk-in-" + std::to_string(i)},
                   {"buyer_id", "walk-in"},
                   {"product", "daily"},
                   {"quantity", 1},
                   {"amount", 10},
                   {"purchased_at", "2026-01-01T10:00:00+08:00"}});
  }
  ASSERT_EQ(d.Call("POST", "/v1/purchases", all).first, 200);
  auto r = testing::Ctl({"buyer", "--url", d.url(), "walk-in"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("100 purchases (the last; 3 earlier purchases and their "
                               "touchpoints not shown: touchpointctl export has them)"));
  EXPECT_THAT(r.out, HasSubstr("walk-in-102"));
  EXPECT_THAT(r.out, Not(HasSubstr("walk-in-2 ")));
}

// A daemon that cannot take purchases for now (here its database at
// database_max_size; on PostgreSQL, a server restarting) answers 503 with
// Retry-After: the import waits that long and sends the batch again, for
// up to --retry-for, saying so; with --retry-for 0 it stops at once.
TEST_F(CtlTest, ImportWaitsOutA503AndSendsTheBatchAgain) {
  DaemonProcess& d = Start("database_max_size: 1MiB\n");
  const std::string now = FormatRfc3339(SystemClock().Now(), UtcZone());
  int status = 200;
  for (int b = 0; b < 2000 && status == 200; ++b) {
    json items = json::array();
    for (int i = 0; i < 100; ++i) {
      const std::string id = std::to_string(b) + "-" + std::to_string(i);
      items.push_back({{"order_id", "fill" + id},
                       {"buyer_id", "fill" + id},
                       {"product", "daily"},
                       {"quantity", 1},
                       {"amount", 10},
                       {"purchased_at", now}});
    }
    status = d.Call("POST", "/v1/purchases", items).first;
  }
  ASSERT_EQ(status, 503) << "the database never filled";
  const std::string csv = Path("p.csv");
  testing::WriteFile(csv, std::string(kCtlHeader) + "o1,b1,daily,1,10," + Recently() +
                              ",\no2,b2,daily,1,10," + Recently() + ",\n");

  auto refused = testing::Ctl({"import", "--url", d.url(), "--retry-for", "0", csv});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("the daemon refused a batch: "));
  EXPECT_THAT(refused.err, Not(HasSubstr("trying the batch again")));

  const auto refusals = [&] {
    auto m = d.http().Request("GET", "/metrics");
    return m.ok() ? testing::Sample(m->body,
                                    R"(touchpoint_ingest_requests_total{outcome="unavailable"})")
                  : -1;
  };
  const double before = refusals();
  const auto started = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async, [&] {
    return testing::Ctl({"import", "--url", d.url(), "--retry-for", "120", csv});
  });
  // The operator raises the cap once the import was refused, while it waits.
  for (int i = 0; i < 400 && refusals() <= before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(refusals(), before) << "the import was never refused";
  testing::WriteFile(Path("touchpoint.yaml"),
                     std::string(testing::kBriefConfig) + "database_max_size: 64MiB\n");
  d.Signal(SIGHUP);
  const auto r = waiting.get();
  EXPECT_EQ(r.exit_code, 0) << r.err << "\n" << d.log();
  EXPECT_THAT(r.out, HasSubstr(csv + ": 2 lines, 2 accepted, 0 duplicates, 0 rejected"));
  EXPECT_THAT(r.err, HasSubstr("import: the daemon cannot take it for now (503): "));
  // The daemon's Retry-After, 10 s: waited, not hammered.
  EXPECT_THAT(r.err, HasSubstr("; trying the batch again in 10 s"));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(9));
}

// Not reaching the daemon at all is a wrong --url, not a restart: no
// retry, whatever --retry-for says.
TEST_F(CtlTest, ImportDoesNotWaitForADaemonItNeverReached) {
  const std::string csv = Path("p.csv");
  testing::WriteFile(csv, std::string(kCtlHeader) + "o1,b1,daily,1,10," + Recently() + ",\n");
  const auto started = std::chrono::steady_clock::now();
  auto r = testing::Ctl({"import", "--url", "http://127.0.0.1:1", csv});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to 127.0.0.1:1"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(CtlTest, AWrongTokenIsNotCalledAMissingOne) {
  testing::WriteFile(Path("api.token"), "tok-0123456789abcdef\n");
  DaemonProcess& d = Start("auth: {token_file: api.token}\n");
  testing::WriteFile(Path("wrong.token"), "tok-wrong-wrong-wrong\n");
  auto r = testing::Ctl({"buyer", "--url", d.url(), "--token-file", Path("wrong.token"), "lin"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("the daemon refused the API token (401)"));
  r = testing::Ctl({"buyer", "--url", d.url(), "lin"});
  EXPECT_THAT(r.err, HasSubstr("it needs an API token"));
}

TEST_F(CtlTest, FilesThatCannotBeReadAreNamedWithTheReason) {
  auto r = testing::Ctl({"validate", dir_.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              HasSubstr(dir_.path() + ":1:1: error: cannot read the file: it is a directory"));
  testing::WriteFile(Path("touchpoint.yaml"), testing::kBriefConfig);
  r = testing::Ctl(
      {"simulate", "--config", Path("touchpoint.yaml"), "--purchases", Path("none.csv")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read " + Path("none.csv") + ": No such file or directory"));
  r = testing::Ctl({"backup", "--database", Path("none.db"), Path("out.db")});
  EXPECT_THAT(r.err, HasSubstr(Path("none.db") + ": No such file or directory"));
  Start();
  r = testing::Ctl({"backup", "--database", Path("tp.db"), Path("missing/out.db")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot write " + Path("missing/out.db.partial") +
                               ": No such file or directory"));
}

}  // namespace
}  // namespace tp
