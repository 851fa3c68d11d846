// Crash loop (issue 15): the real touchpointd killed with SIGKILL at random
// moments, again and again, while purchases come in and consumers lease and
// ack; then what was promised must still hold.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/time.h"
#include "daemon_process.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::DaemonProcess;

// Sanitized builds run everything 2-3x slower: waits and deadlines stretch,
// the number of rounds does not.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSlowdown = 3;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kSlowdown = 3;
#else
constexpr int kSlowdown = 1;
#endif
#else
constexpr int kSlowdown = 1;
#endif

milliseconds Scaled(milliseconds m) { return m * kSlowdown; }

// Steps that come due while the test runs (1 s, 2 s) and one that stays
// pending; no send window and a long grace, so every due step fires at any
// hour whatever the downtime. Repurchases cancel, so cancellations race
// with firing too.
const std::string kCrashConfig = testing::TestConfig()
                                     .Cadence("crash")
                                     .CancelOnRepurchase()
                                     .Step("1s", "first")
                                     .Step("2s", "second")
                                     .Step("1d", "later")
                                     .Yaml();

constexpr int kRounds = 30;
constexpr int kIngestThreads = 2;
constexpr int kConsumerThreads = 2;
constexpr int kBatch = 5;
// Each order goes to one of this many buyers per thread, at random: a
// buyer's next order comes some 0.1-3 s later, so a repurchase cancels the
// earlier order's steps before, while or after they fire.
constexpr int kBuyersPerThread = 300;
constexpr int kLeaseMax = 50;
constexpr int kVisibilityS = 2;
constexpr milliseconds kLastStep = seconds(2);
// One lease in this many is not acked, as if its consumer died: those come
// back after the visibility timeout even when no kill hits a lease.
constexpr int kUnackedOneIn = 25;

// A seed from TP_CRASH_SEED, to replay a failure, or a fresh one.
std::uint32_t Seed() {
  if (const char* s = std::getenv("TP_CRASH_SEED"); s != nullptr && *s != '\0') {
    return static_cast<std::uint32_t>(std::stoul(s));
  }
  return std::random_device()();
}

bool CanBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// A free port outside the kernel's ephemeral range. While the daemon is
// down the clients keep connecting to its port; were that port ephemeral, a
// connect could be given it as its own source port and connect to itself
// (TCP simultaneous open), and the restarted daemon could not bind it.
int FreePortOutsideEphemeralRange() {
  int low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick =
      low > 11024 ? std::uniform_int_distribution<int>(low - 10000, low - 1)
                  : std::uniform_int_distribution<int>(high + 1, 65535);
  for (int i = 0; i < 100; ++i) {
    const int port = pick(rng);
    if (CanBind(port)) return port;
  }
  return 0;
}

std::unique_ptr<HttpClient> Client(const std::string& url) {
  auto client = HttpClient::Create(url);
  EXPECT_TRUE(client.ok());
  (*client)->set_timeout(Scaled(seconds(10)));
  return std::move(*client);
}

// One hand-out of a touchpoint's message to a consumer.
struct HandOut {
  int deliveries = 0;
  bool ack_confirmed = false;  // an ack of its receipt was answered 200, counted
};

// What the clients saw, shared between their threads.
struct Ledger {
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;       // order id -> buyer id
  std::map<std::string, std::string> unknown;            // sent, no answer yet
  std::map<std::string, std::vector<HandOut>> handouts;  // by touchpoint id
  Instant last_purchased_at{};
  std::vector<std::string> errors;
  int resent_batches = 0;
  int committed_unanswered = 0;  // duplicates on a resend: committed, answer lost
  int unavailable = 0;           // 503 answers to a purchase batch
  int leases = 0;
  int unacked_leases = 0;  // on purpose
  int lost_acks = 0;       // no answer
  int ambiguous_acks = 0;  // answered, but fewer receipts counted than sent

  void Error(std::string e) {
    std::lock_guard lock(mu);
    if (errors.size() < 20) errors.push_back(std::move(e));
  }
};

// Posts batches of new purchases; a batch whose answer is lost is sent again
// (as a real client would) until the daemon answers it.
void Ingest(int thread, std::uint32_t seed, const std::string& url, const std::atomic<bool>& stop,
            const std::atomic<bool>& abandon, Ledger& ledger) {
  auto client = Client(url);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick_buyer(0, kBuyersPerThread - 1);
  for (int next = 0; !stop && !abandon; next += kBatch) {
    const Instant now = SystemClock().Now();
    json batch = json::array();
    std::vector<std::pair<std::string, std::string>> orders;
    for (int i = 0; i < kBatch; ++i) {
      const int seq = next + i;
      const std::string order = "w" + std::to_string(thread) + "-" + std::to_string(seq);
      const std::string buyer =
          "w" + std::to_string(thread) + "-b" + std::to_string(pick_buyer(rng));
      // A buyer's later orders are later, so they cancel the earlier ones.
      batch.push_back({{"order_id", order},
                       {"buyer_id", buyer},
                       {"product", "daily"},
                       {"quantity", 1},
                       {"amount", 120},
                       {"purchased_at", FormatRfc3339(now - milliseconds(kBatch - i), UtcZone())}});
      orders.emplace_back(order, buyer);
    }
    {
      std::lock_guard lock(ledger.mu);
      for (const auto& [order, buyer] : orders) ledger.unknown[order] = buyer;
      ledger.last_purchased_at = std::max(ledger.last_purchased_at, now);
    }
    const std::string body = batch.dump();
    for (int attempt = 0; !abandon; ++attempt) {
      if (attempt == 1) {
        std::lock_guard lock(ledger.mu);
        ++ledger.resent_batches;
      }
      auto r = client->Request("POST", "/v1/purchases", body);
      if (!r.ok()) {  // down, or died with the request in flight
        std::this_thread::sleep_for(milliseconds(5));
        continue;
      }
      if (r->status == 503) {  // could not commit: nothing recorded, try again
        {
          std::lock_guard lock(ledger.mu);
          ++ledger.unavailable;
        }
        std::this_thread::sleep_for(milliseconds(5));
        continue;
      }
      if (r->status != 200) {
        ledger.Error("POST /v1/purchases answered " + std::to_string(r->status) + ": " + r->body);
        break;
      }
      const json answer = json::parse(r->body, nullptr, false);
      if (answer.is_discarded() || !answer.contains("results") ||
          answer["results"].size() != orders.size()) {
        ledger.Error("POST /v1/purchases: unexpected answer " + r->body);
        break;
      }
      // Only a batch whose answer was lost can have been recorded before
      // (HttpClient may also have resent it once by itself).
      int duplicates = 0;
      for (const json& result : answer["results"]) {
        if (result["status"] == "duplicate") ++duplicates;
      }
      std::lock_guard lock(ledger.mu);
      ledger.committed_unanswered += duplicates;
      for (const auto& [order, buyer] : orders) {
        ledger.unknown.erase(order);
        ledger.acknowledged[order] = buyer;
      }
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// Leases and acks until told to stop, recording every hand-out and which
// acks were confirmed.
void Consume(std::uint32_t seed, const std::string& url, const std::atomic<bool>& stop,
             Ledger& ledger) {
  auto client = Client(url);
  std::mt19937 rng(seed);
  const std::string lease = json{{"max", kLeaseMax}, {"visibility_s", kVisibilityS}}.dump();
  while (!stop) {
    auto r = client->Request("POST", "/v1/queues/outbox/lease", lease);
    if (!r.ok()) {
      std::this_thread::sleep_for(milliseconds(5));
      continue;
    }
    const json answer = json::parse(r->body, nullptr, false);
    if (r->status != 200 || answer.is_discarded() || !answer.contains("messages") ||
        !answer["messages"].is_array()) {
      ledger.Error("lease answered " + std::to_string(r->status) + ": " + r->body);
      std::this_thread::sleep_for(milliseconds(50));
      continue;
    }
    const json& messages = answer["messages"];
    if (messages.empty()) {
      std::this_thread::sleep_for(milliseconds(20));
      continue;
    }
    json receipts = json::array();
    std::vector<std::pair<std::string, std::size_t>> leased;  // touchpoint id, hand-out
    {
      std::lock_guard lock(ledger.mu);
      ++ledger.leases;
      for (const json& m : messages) {
        const std::string id = m.at("event").at("data").at("id");
        auto& list = ledger.handouts[id];
        list.push_back({m.at("deliveries").get<int>(), false});
        leased.emplace_back(id, list.size() - 1);
        receipts.push_back(m.at("receipt"));
      }
    }
    if (std::uniform_int_distribution<int>(1, kUnackedOneIn)(rng) == 1) {
      std::lock_guard lock(ledger.mu);
      ++ledger.unacked_leases;
      continue;
    }
    auto a = client->Request("POST", "/v1/queues/outbox/ack", json{{"receipts", receipts}}.dump());
    if (!a.ok()) {  // the ack may or may not have been recorded
      std::lock_guard lock(ledger.mu);
      ++ledger.lost_acks;
      continue;
    }
    const json acked = json::parse(a->body, nullptr, false);
    if (a->status != 200 || acked.is_discarded() || !acked.contains("acked") ||
        !acked["acked"].is_number_integer()) {
      ledger.Error("ack answered " + std::to_string(a->status) + ": " + a->body);
      continue;
    }
    const auto count = acked["acked"].get<std::size_t>();
    std::lock_guard lock(ledger.mu);
    if (count > receipts.size()) {
      ledger.errors.push_back("ack of " + std::to_string(receipts.size()) + " receipts counted " +
                              std::to_string(count));
    } else if (count < receipts.size()) {
      // Some receipt was no longer current (its visibility ran out), or a
      // retried ack found it acked already: which ones is not said.
      ++ledger.ambiguous_acks;
    } else {
      for (const auto& [id, index] : leased) ledger.handouts[id][index].ack_confirmed = true;
    }
  }
}

// Stops and joins the client threads however the test ends.
struct Threads {
  std::atomic<bool> stop_ingest{false}, stop_consumers{false}, abandon{false};
  std::vector<std::thread> ingest, consumers;

  void JoinIngest() {
    stop_ingest = true;
    for (auto& t : ingest) t.join();
    ingest.clear();
  }
  void JoinConsumers() {
    stop_consumers = true;
    for (auto& t : consumers) t.join();
    consumers.clear();
  }
  ~Threads() {
    abandon = true;
    JoinIngest();
    JoinConsumers();
  }
};

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    result = std::string("cannot open: ") + sqlite3_errmsg(db);
    sqlite3_close(db);
    return result;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) != SQLITE_OK) {
    result = std::string("cannot check: ") + sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      if (!result.empty()) result += "\n";
      result += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

// The number of history entries of `touchpoint` with this reason.
int HistoryCount(const json& touchpoint, const std::string& reason) {
  int n = 0;
  for (const json& h : touchpoint["history"]) n += h["reason"] == reason;
  return n;
}

TEST(CrashTest, ThirtyKill9RoundsUnderLoadLoseNothing) {
  const auto started = std::chrono::steady_clock::now();
  const std::uint32_t seed = Seed();
  std::cout << "[ crash    ] seed " << seed << " (TP_CRASH_SEED=" << seed << " to replay)"
            << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937 rng(seed);

  testing::TempDir dir;
  const std::string db = dir.path() + "/tp.db";
  testing::WriteFile(dir.path() + "/touchpoint.yaml", kCrashConfig);
  DaemonProcess d(dir.path() + "/touchpoint.yaml", db, dir.path() + "/daemon.log");
  std::string address;
  for (int i = 0; i < 5 && address.empty(); ++i) {
    const int port = FreePortOutsideEphemeralRange();
    ASSERT_NE(port, 0) << "no free port";
    if (d.Start("127.0.0.1:" + std::to_string(port))) address = d.address();
  }
  ASSERT_FALSE(address.empty()) << d.log();
  const std::string url = d.url();

  Ledger ledger;
  Threads threads;
  for (int t = 0; t < kIngestThreads; ++t) {
    threads.ingest.emplace_back(Ingest, t, seed + 100 + static_cast<std::uint32_t>(t), url,
                                std::cref(threads.stop_ingest), std::cref(threads.abandon),
                                std::ref(ledger));
  }
  for (int c = 0; c < kConsumerThreads; ++c) {
    threads.consumers.emplace_back(Consume, seed + 1 + static_cast<std::uint32_t>(c), url,
                                   std::cref(threads.stop_consumers), std::ref(ledger));
  }

  std::uniform_int_distribution<int> moment(50, 400);
  for (int round = 0; round < kRounds; ++round) {
    std::this_thread::sleep_for(milliseconds(moment(rng)));
    d.Kill9();
    ASSERT_TRUE(d.Start(address)) << "round " << round;
  }
  threads.JoinIngest();

  // Every step due by now fires, leaving only the last order's "later"
  // step of each buyer pending; the consumers drain the queue (what was
  // leased and not acked comes back after its visibility timeout).
  Instant last_due;
  double buyers = 0;
  {
    std::lock_guard lock(ledger.mu);
    last_due = ledger.last_purchased_at + kLastStep;
    std::set<std::string> distinct;
    for (const auto& [order, buyer] : ledger.acknowledged) distinct.insert(buyer);
    buyers = static_cast<double>(distinct.size());
  }
  std::this_thread::sleep_until(last_due);
  const auto drain_deadline = std::chrono::steady_clock::now() + Scaled(seconds(30));
  double depth = -1, pending = -1;
  while (std::chrono::steady_clock::now() < drain_deadline) {
    auto r = d.http().Request("GET", "/metrics");
    ASSERT_TRUE(r.ok()) << r.status().message();
    depth = testing::Sample(r->body, R"(touchpoint_queue_messages{queue="outbox"})");
    pending = testing::Sample(r->body, "touchpoint_touchpoints_pending");
    if (depth == 0 && pending == buyers) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  threads.JoinConsumers();
  EXPECT_EQ(depth, 0) << "the queue was not drained";
  EXPECT_EQ(pending, buyers) << "pending touchpoints, one per buyer expected";
  const Instant checked_at = SystemClock().Now();

  std::lock_guard lock(ledger.mu);
  for (const std::string& e : ledger.errors) ADD_FAILURE() << e;
  ASSERT_TRUE(ledger.unknown.empty()) << "every batch was answered in the end";

  // 1. Every acknowledged purchase is there, and nothing else.
  // 2. Every touchpoint due by now is final: fired (queued once, handed out,
  //    acked once) or cancelled; none is pending.
  std::map<std::string, std::set<std::string>> orders_of;
  for (const auto& [order, buyer] : ledger.acknowledged) orders_of[buyer].insert(order);
  std::map<std::string, int> by_status;
  std::set<std::string> fired;
  int missing = 0, stuck = 0, bad_fired = 0;
  for (const auto& [buyer, orders] : orders_of) {
    auto [status, body] = d.Call("GET", "/v1/buyers/" + buyer);
    ASSERT_EQ(status, 200) << buyer << ": " << body;
    std::set<std::string> present;
    for (const json& p : body["purchases"]) present.insert(p["order_id"].get<std::string>());
    if (present != orders) {
      if (++missing <= 5) ADD_FAILURE() << "buyer " << buyer << " has " << body["purchases"];
    }
    for (const json& t : body["touchpoints"]) {
      const std::string id = t["id"];
      const std::string state = t["status"];
      ++by_status[state];
      const auto due = ParseRfc3339(t["due_at"].get<std::string>());
      ASSERT_TRUE(due.has_value()) << t;
      if (*due > checked_at) continue;
      if (state == "pending") {
        if (++stuck <= 5) ADD_FAILURE() << "due and still pending: " << t.dump();
      } else if (state == "fired") {
        fired.insert(id);
        const auto handed = ledger.handouts.find(id);
        const int queued = HistoryCount(t, "queued on outbox");
        const int acked = HistoryCount(t, "acked on outbox");
        if (handed == ledger.handouts.end() || queued != 1 || acked != 1) {
          if (++bad_fired <= 5) {
            ADD_FAILURE() << "fired touchpoint handed out "
                          << (handed == ledger.handouts.end() ? 0 : handed->second.size())
                          << " times, queued " << queued << " times, acked " << acked
                          << " times (want 1+, 1, 1): " << t.dump();
          }
        }
      } else if (state != "cancelled") {
        ADD_FAILURE() << "unexpected status: " << t.dump();
      }
    }
  }
  EXPECT_EQ(missing, 0) << "buyers whose purchases differ from the acknowledged ones";
  EXPECT_EQ(stuck, 0) << "touchpoints due and still pending";
  EXPECT_EQ(bad_fired, 0) << "fired touchpoints not delivered exactly as promised";

  // 3. Duplicates only from unacked leases: each hand-out counts one more
  //    delivery, and an ack that was confirmed was the last hand-out.
  int handouts = 0, duplicates = 0, bad_duplicates = 0, strays = 0;
  for (auto& [id, list] : ledger.handouts) {
    handouts += static_cast<int>(list.size());
    duplicates += static_cast<int>(list.size()) - 1;
    if (!fired.contains(id) && ++strays <= 5) {
      ADD_FAILURE() << "handed out, not a fired touchpoint: " << id;
    }
    std::sort(list.begin(), list.end(),
              [](const HandOut& a, const HandOut& b) { return a.deliveries < b.deliveries; });
    std::string problem;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0 && list[i].deliveries == list[i - 1].deliveries) {
        problem = "two hand-outs with the same delivery count";
      }
      if (list[i].ack_confirmed && i + 1 != list.size()) problem = "handed out after an ack";
    }
    if (!problem.empty() && ++bad_duplicates <= 5) {
      std::ostringstream out;
      for (const HandOut& h : list) {
        out << " deliveries " << h.deliveries << (h.ack_confirmed ? " (acked)" : "");
      }
      ADD_FAILURE() << "touchpoint " << id << ": " << problem << ":" << out.str();
    }
  }
  EXPECT_EQ(bad_duplicates, 0);
  EXPECT_EQ(strays, 0);

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  // 4. The file survived every kill.
  EXPECT_EQ(IntegrityCheck(db), "ok");

  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  std::ostringstream summary;
  summary << "seed " << seed << ", " << kRounds << " rounds, " << ledger.acknowledged.size()
          << " purchases acknowledged (" << ledger.resent_batches << " batches resent, "
          << ledger.committed_unanswered << " committed before a lost answer, "
          << ledger.unavailable << " answered 503), touchpoints";
  for (const auto& [state, n] : by_status) summary << " " << state << " " << n;
  summary << "; " << ledger.leases << " leases (" << ledger.unacked_leases
          << " not acked on purpose, " << ledger.lost_acks << " acks lost, "
          << ledger.ambiguous_acks << " partly counted), " << handouts << " hand-outs of "
          << ledger.handouts.size() << " touchpoints, " << duplicates << " duplicates; "
          << took.count() << " ms";
  std::cout << "[ crash    ] " << summary.str() << std::endl;
  ::testing::Test::RecordProperty("acknowledged", static_cast<int>(ledger.acknowledged.size()));
  ::testing::Test::RecordProperty("handouts", handouts);
  ::testing::Test::RecordProperty("duplicates", duplicates);
  ::testing::Test::RecordProperty("rounds", kRounds);
}

}  // namespace
}  // namespace tp
