// What must not hold a daemon's loop up on PostgreSQL, end to end: an
// ingest group or an opt-out waiting on the server, and the network to the
// server cut; and an opt-out the server refuses.
// While the loop is held, /healthz, leases and acks wait with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cut_proxy.h"
#include "daemon/stop_guard.h"
#include "daemon_process.h"
#include "harness.h"
#include "http/client.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "postgres_fixture.h"
#include "store/pg_store.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::PgServer;

// Resumes a server SignalAll(SIGSTOP) froze, however the test ends.
struct Thaw {
  PgServer& server;
  ~Thaw() { server.SignalAll(SIGCONT); }
};

// A purchase posted on a client of its own, which waits for its answer up
// to 90 s: its status, or 0 if none came.
std::future<int> PostInBackground(DaemonProcess& d, std::string order, std::string buyer) {
  return std::async(std::launch::async, [&d, order = std::move(order), buyer = std::move(buyer)] {
    auto c = HttpClient::Create(d.url());
    EXPECT_TRUE(c.ok());
    (*c)->set_timeout(std::chrono::seconds(90));
    auto r = (*c)->Request("POST", "/v1/purchases", PurchaseBody(order, buyer, Ago({})).dump());
    return r.ok() ? r->status : 0;
  });
}

// A purchase of `buyer` (or, with `path`, a POST of it without a body)
// posted while another writer holds the buyer's turn: the daemon's group
// writing it waits on the server until Free().
class HeldRequest {
 public:
  // Null (and a failure) if the turn or the client could not be had.
  static std::unique_ptr<HeldRequest> Post(DaemonProcess& d, const PgServer::Database& db,
                                           const std::string& config, const std::string& buyer,
                                           std::string path = "") {
    std::unique_ptr<HeldRequest> held(new HeldRequest(config));
    auto other = PgStore::Open(db.url(), held->rules_, "another-writer");
    auto client = HttpClient::Create(d.url());  // d's is not for two threads at once
    const std::vector<std::string> buyers = {buyer};
    if (!other.ok() || !client.ok() || !(*other)->Begin().ok() ||
        !(*other)->TakeBuyersTurns(buyers).ok()) {
      ADD_FAILURE() << "cannot hold " << buyer << "'s turn or make a client";
      return nullptr;
    }
    held->other_ = std::move(*other);
    held->client_ = std::move(*client);
    held->client_->set_timeout(std::chrono::seconds(20));
    held->answer_ = std::async(std::launch::async, [h = held.get(), buyer, path] {
      auto r = path.empty() ? h->client_->Request("POST", "/v1/purchases",
                                                  PurchaseBody("o-" + buyer, buyer, Ago({})).dump())
                            : h->client_->Request("POST", path, "");
      return r.ok() ? std::make_pair(r->status, r->body) : std::make_pair(-1, std::string());
    });
    return held;
  }

  // Whether the daemon's group waits for the turn (within 2 s). (Only in
  // this database: other tests' daemons on the shared server wait for
  // locks of their own, and a wait there is not this group's.)
  bool Waiting(const PgServer::Database& db) const {
    auto watch = pg::Connection::Open(db.url(), "test");
    for (int i = 0; i < 100; ++i) {
      if (watch
              ->Exec("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                     "application_name = 'touchpointd-ingest' AND datname = current_database()")
              .Int64(0, 0) > 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  bool Answered() const {
    return answer_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  // Frees the turn: the purchase's status and body.
  std::pair<int, std::string> Free() {
    EXPECT_TRUE(other_->Rollback().ok());
    return answer_.get();
  }

 private:
  explicit HeldRequest(const std::string& config) : rules_(testing::MustLoad(config)) {}

  RulesInForce rules_;
  std::unique_ptr<PgStore> other_;
  std::unique_ptr<HttpClient> client_;
  std::future<std::pair<int, std::string>> answer_;
};

// A group of purchases waits on the server (here for a buyer's turn that
// another writer holds; in production, a large group takes 100 ms or
// more): the daemon answers /healthz and leases meanwhile, and the
// purchase once the turn is free. On the loop, the group held every one
// of them until it ended (5 s later: lock_timeout).
TEST_F(PostgresDaemonTest, AnIngestGroupWaitingOnTheServerDoesNotHoldTheLoop) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config = testing::TestConfig().Step("1s", "soon").Yaml();
  DaemonProcess& d = Start(config, db->url());
  auto held = HeldRequest::Post(d, *db, config, "b1");
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(held->Waiting(*db)) << d.log();

  auto [health_status, health] = d.Call("GET", "/healthz");
  EXPECT_EQ(health_status, 200) << health;
  EXPECT_EQ(health["status"], "ok") << health;
  EXPECT_EQ(d.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}}).first, 200);
  EXPECT_FALSE(held->Answered()) << "the purchase was answered before the turn was free";

  EXPECT_EQ(held->Free().first, 200) << d.log();
  EXPECT_EQ(DrainQueue({&d}, 1, std::chrono::seconds(15)).size(), 1u) << d.log();
}

// An opt-out takes its buyer's turn as a purchase does: written with the
// ingest groups, it waits off the loop. On the loop, it held /healthz up
// until the turn was free.
TEST_F(PostgresDaemonTest, AnOptOutWaitingForItsBuyersTurnDoesNotHoldTheLoop) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config = testing::TestConfig().Step("1h", "later").Yaml();
  DaemonProcess& d = Start(config, db->url());
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  auto held = HeldRequest::Post(d, *db, config, "b1", "/v1/buyers/b1/opt-out");
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(held->Waiting(*db)) << d.log();

  const auto asked = std::chrono::steady_clock::now();
  auto [health_status, health] = d.Call("GET", "/healthz");
  EXPECT_EQ(health_status, 200) << health;
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(3));  // not 5 s
  EXPECT_FALSE(held->Answered()) << "the opt-out was answered before the turn was free";

  const auto [status, body] = held->Free();
  EXPECT_EQ(status, 200) << body << d.log();
  EXPECT_EQ(json::parse(body)["suppressed"], 1) << body;
  auto [buyer_status, buyer] = d.Call("GET", "/v1/buyers/b1");
  EXPECT_EQ(buyer["opted_out"], true) << buyer;
}

// An opt-out the store cannot write is answered 503 naming it, and writes
// nothing: the buyer is not opted out, its touchpoints stay pending and
// none is counted suppressed, until the opt-out is sent again. Here its
// buyer's touchpoints are locked past the daemon's lock_timeout (5 s), as
// a firing claim of a daemon stalled mid-pass would hold them.
TEST_F(PostgresDaemonTest, AnOptOutTheStoreCannotWriteIsRefusedAndWritesNothing) {
  auto db = PgServer::Shared().NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1h", "later").Yaml(), db->url());
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  auto claim = pg::Connection::Open(db->url(), "another-daemons-claim");
  claim->Exec("SET idle_in_transaction_session_timeout = 0");  // held as long as it takes
  claim->Exec("BEGIN");
  ASSERT_EQ(claim->Exec("SELECT id FROM touchpoints WHERE state = 0 FOR NO KEY UPDATE").rows(), 1);

  auto [refused_status, refused] = d.Call("POST", "/v1/buyers/b1/opt-out");
  EXPECT_EQ(refused_status, 503) << refused << d.log();
  EXPECT_THAT(refused.dump(), HasSubstr("cannot opt out")) << refused;
  claim->Exec("ROLLBACK");
  auto [buyer_status, buyer] = d.Call("GET", "/v1/buyers/b1");
  ASSERT_EQ(buyer_status, 200) << buyer;
  EXPECT_EQ(buyer["opted_out"], false) << buyer;
  ASSERT_EQ(buyer["touchpoints"].size(), 1u) << buyer;
  EXPECT_EQ(buyer["touchpoints"][0]["status"], "pending") << buyer;
  auto metrics = d.http().Request("GET", "/metrics", "");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, ::testing::Not(HasSubstr("touchpoint_touchpoints_suppressed_total{")));

  auto [status, body] = d.Call("POST", "/v1/buyers/b1/opt-out");
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body["suppressed"], 1) << body;
}

// A reload's re-plan waits for the ingest group being written (the loop
// does not): its requests were parsed under the old rules and are
// recorded under them, and the re-plan to the new ones then finds them.
// Had the re-plan started first, it would have found nothing to do, and
// b1 would keep the old plan.
TEST_F(PostgresDaemonTest, AReloadWaitsForTheIngestGroupBeingWritten) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string before = testing::TestConfig().Step("1h", "soon").Yaml();
  DaemonProcess& d = Start(before, db->url());
  auto held = HeldRequest::Post(d, *db, before, "b1");
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(held->Waiting(*db)) << d.log();
  const auto waiting_since = std::chrono::steady_clock::now();
  testing::WriteFile(Path("touchpoint.yaml"),
                     testing::TestConfig().Step("1h", "soon").Step("2h", "later").Yaml());
  d.Signal(SIGHUP);
  for (int i = 0; i < 100 && d.log().find("received SIGHUP") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The reload is under way, the group still waiting: within the daemon's
  // lock_timeout (5 s), which would end the group with a 503.
  // The reload is done, its re-plan held; the loop does not wait.
  auto [reloaded_status, reloaded] = d.Call("GET", "/healthz");
  EXPECT_EQ(reloaded_status, 200) << reloaded;
  EXPECT_EQ(reloaded["config"]["replan"]["state"], "running") << reloaded;
  EXPECT_LT(std::chrono::steady_clock::now() - waiting_since, std::chrono::seconds(4))
      << "too slow to free the turn before the daemon's lock_timeout";
  EXPECT_FALSE(held->Answered());
  const auto [status, answer] = held->Free();
  EXPECT_EQ(status, 200) << answer;
  EXPECT_EQ(json::parse(answer, nullptr, false)["touchpoints_planned"], 1) << answer;

  json health;
  for (int i = 0; i < 100; ++i) {
    health = d.Call("GET", "/healthz").second;
    if (health["config"].contains("replan") && health["config"]["replan"]["state"] == "done") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(health["config"]["replan"]["state"], "done") << health;
  auto [buyer_status, buyer] = d.Call("GET", "/v1/buyers/b1");
  ASSERT_EQ(buyer_status, 200) << buyer;
  EXPECT_EQ(buyer["touchpoints"].size(), 2u) << buyer << "\n" << d.log();
}

// PostgreSQL's host cut off: the daemon's connections are closed (as a
// firewall's reset would), and new ones get no answer, as from a host
// that drops packets (each waits for the connect timeout, 2 s). The
// daemon's loop answers at once meanwhile, purchases get 503, /healthz
// says why, and the daemon resumes by itself once the network is back.
TEST_F(PostgresDaemonTest, ACutNetworkDoesNotHoldTheLoop) {
  auto db = PgServer::Shared().NewDatabase();
  testing::CutProxy proxy(PgServer::Shared().url());
  DaemonProcess& d = Start(testing::TestConfig().Step("1s", "soon").Yaml(), proxy.url(db->name()));
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago(std::chrono::seconds(0)))).first,
      200);

  proxy.Cut();
  // Through the probe's first attempts (0.25, 0.5, 1 and 2 s apart), each
  // waiting 2 s for an answer, and the store's reconnects (one a second).
  std::chrono::milliseconds slowest{0};
  std::string slowest_call;
  json degraded;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(7);
  for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
    for (const bool purchase : {true, false}) {
      const auto started = std::chrono::steady_clock::now();
      auto [status, body] = purchase
                                ? d.Call("POST", "/v1/purchases",
                                         PurchaseBody("cut" + std::to_string(i), "b2", Ago({})))
                                : d.Call("GET", "/healthz");
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
      if (took > slowest) {
        slowest = took;
        slowest_call = purchase ? "a purchase" : "/healthz";
      }
      if (purchase) {
        EXPECT_EQ(status, 503) << body;
      } else if (body["status"] == "degraded") {
        degraded = body;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A connect that waited on the loop held it for 2 s.
  EXPECT_LT(slowest, std::chrono::milliseconds(1000)) << slowest_call << "\n" << d.log();
  EXPECT_EQ(degraded["storage"]["state"], "unreachable") << degraded;
  EXPECT_THAT(degraded["storage"]["reason"].dump(), HasSubstr("does not answer"));

  proxy.Restore();
  int answered = 0;
  for (int i = 0; i < 150 && answered != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answered = d.Call("POST", "/v1/purchases", PurchaseBody("o2", "b3", Ago({}))).first;
  }
  EXPECT_EQ(answered, 200) << d.log();
  EXPECT_EQ(d.Call("GET", "/healthz").second["status"], "ok");
  const auto seen = DrainQueue({&d}, 2, std::chrono::seconds(15));
  EXPECT_EQ(seen.size(), 2u) << d.log();
}

// The whole server frozen (every process stopped: a frozen VM, a stalled
// disk): the connections stay up and nothing answers, so a statement of
// the loop's session would wait for as long, and /healthz with it. It is
// given up after 10 s (the loop's answer limit); the daemon then finds the
// server not answering and says so, and recovers once it goes on. A lease
// and a scrape of /metrics, on threads and sessions of their own, are
// answered in time too: 503, and the metrics without the store's counts.
TEST_F(PostgresDaemonTest, AFrozenServerHoldsTheLoopNoLongerThanItsAnswerLimit) {
  PgServer own;  // frozen by this test alone
  auto db = own.NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1h", "later").Yaml(), db->url());
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  auto client = HttpClient::Create(d.url());
  ASSERT_TRUE(client.ok());
  (*client)->set_timeout(std::chrono::seconds(30));
  own.SignalAll(SIGSTOP);
  const Thaw thaw{own};
  // (Each on a client of its own, timed from its start.)
  const auto timed = [&](const char* method, const char* target, const char* body) {
    return std::async(std::launch::async, [&d, method, target, body] {
      auto c = HttpClient::Create(d.url());
      EXPECT_TRUE(c.ok());
      (*c)->set_timeout(std::chrono::seconds(90));
      const auto start = std::chrono::steady_clock::now();
      auto r = (*c)->Request(method, target, body);
      const auto took = std::chrono::steady_clock::now() - start;
      return std::make_pair(r.ok() ? std::move(*r) : HttpResult{}, took);
    });
  };
  auto lease = timed("POST", "/v1/queues/outbox/lease", R"({"max": 10})");
  auto metrics = timed("GET", "/metrics", "");
  // Each answered, and in time; the buyer's timeline needs the loop's
  // session, /healthz does not.
  json degraded;
  auto slowest = std::chrono::steady_clock::duration::zero();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int i = 0; degraded.is_null() && std::chrono::steady_clock::now() < deadline; ++i) {
    const char* target = i % 2 == 0 ? "/v1/buyers/b1" : "/healthz";
    const auto start = std::chrono::steady_clock::now();
    auto r = (*client)->Request("GET", target);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
    ASSERT_TRUE(r.ok()) << target << ": " << r.status().message() << "\n" << d.log();
    auto body = json::parse(r->body, nullptr, false);
    if (i % 2 == 0) {
      EXPECT_EQ(r->status, 503) << r->body;
    } else if (body["status"] == "degraded") {
      degraded = body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_LT(slowest, std::chrono::seconds(15)) << d.log();
  EXPECT_EQ(degraded["storage"]["state"], "unreachable") << degraded << "\n" << d.log();
  // Their own limit, after the loop read them: it may have been held by
  // the timeline's statement first, up to its own 10 s (20 s seen under
  // ctest -j3; without the limit they wait for the whole freeze).
  const auto [leased, lease_took] = lease.get();
  EXPECT_EQ(leased.status, 503) << leased.body;
  EXPECT_LT(lease_took, std::chrono::seconds(40));
  const auto [scraped, scrape_took] = metrics.get();
  EXPECT_EQ(scraped.status, 200) << scraped.body;
  EXPECT_THAT(scraped.body, HasSubstr("touchpoint_store_counts_up 0"));
  EXPECT_LT(scrape_took, std::chrono::seconds(40));

  own.SignalAll(SIGCONT);
  int answered = 0;
  for (int i = 0; i < 150 && answered != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answered = d.Call("GET", "/v1/buyers/b1").first;
  }
  EXPECT_EQ(answered, 200) << d.log();
  // The watch resumes at its next backoff probe (every 4 s at most): the
  // loop's session may answer first.
  std::string status;
  for (int i = 0; i < 100 && status != "ok"; ++i) {
    status = d.Call("GET", "/healthz").second["status"];
    if (status != "ok") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, "ok") << d.log();
}

// The whole server frozen while only a purchase waits for it (the ingest
// thread has no answer limit, and no call fails) and only /healthz is
// asked: the statement waiting makes the daemon probe the server, which
// does not answer a new connection either. /healthz says so within the
// watch's 10 s and the probe's connect timeout, and purchases get 503 at
// once instead of waiting with the first.
TEST_F(PostgresDaemonTest, AFrozenServerIsFoundThoughNoCallFails) {
  PgServer own;  // frozen by this test alone
  auto db = own.NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1h", "later").Yaml(), db->url());
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  own.SignalAll(SIGSTOP);
  const Thaw thaw{own};
  const auto frozen = std::chrono::steady_clock::now();
  auto waiting = PostInBackground(d, "o2", "b2");
  json degraded;
  while (degraded.is_null() &&
         std::chrono::steady_clock::now() - frozen < std::chrono::seconds(40)) {
    auto [status, body] = d.Call("GET", "/healthz");
    if (body["status"] == "degraded") degraded = body;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto found = std::chrono::steady_clock::now() - frozen;
  EXPECT_EQ(degraded["storage"]["state"], "unreachable") << degraded << "\n" << d.log();
  EXPECT_LT(found, std::chrono::seconds(30)) << d.log();
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o3", "b3", Ago({}))).first, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(2));

  own.SignalAll(SIGCONT);
  const int first = waiting.get();
  EXPECT_TRUE(first == 200 || first == 503) << first;
  std::string status;
  for (int i = 0; i < 150 && status != "ok"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = d.Call("GET", "/healthz").second["status"];
  }
  EXPECT_EQ(status, "ok") << d.log();
}

// A stop while the whole server is frozen: the ingest thread waits for a
// purchase's statement (it has no answer limit) and the stop would join it
// for as long as the freeze lasts (until systemd's TimeoutStopSec kills
// the daemon). Statements still waiting once the stop's grace is over are
// cut loose, and the daemon exits in time, and cleanly.
TEST_F(PostgresDaemonTest, AStopIsNotHeldByAFrozenServer) {
  PgServer own;  // frozen by this test alone
  auto db = own.NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1h", "later").Yaml(), db->url());
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  own.SignalAll(SIGSTOP);
  const Thaw thaw{own};
  auto waiting = PostInBackground(d, "o2", "b2");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the purchase waits for the server
  const auto stopped = std::chrono::steady_clock::now();
  d.Signal(SIGTERM);
  const std::optional<int> code = d.WaitFor(std::chrono::seconds(45));
  const auto took = std::chrono::steady_clock::now() - stopped;
  own.SignalAll(SIGCONT);
  ASSERT_TRUE(code.has_value()) << "still running 45 s after SIGTERM\n" << d.log();
  EXPECT_EQ(*code, 0) << d.log();
  EXPECT_LT(took, StopGuard::kGrace + std::chrono::seconds(10)) << d.log();
  EXPECT_THAT(d.log(), HasSubstr("cut loose")) << d.log();
  // Answered before the daemon went, or its connection closed: not lost
  // silently either way (a 503 or a failed request is retried).
  const int first = waiting.get();
  EXPECT_TRUE(first == 503 || first == 0) << first;
}

}  // namespace
}  // namespace tp
