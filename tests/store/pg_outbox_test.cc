// Push deliveries of the PostgreSQL store where several daemons share one
// database: a delivery attempted by one daemon at a time, taken over (and
// counted) when its daemon dies, but not when its own session was
// replaced, a late result from a session taken over ignored, and one
// deliverer for an ordered sink.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "harness.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg/outbox.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"
#include "store/values.h"

namespace tp {
namespace {

using testing::At;
using testing::kConfig;
using testing::PgServer;
using testing::PgStoreTest;

// Push deliveries: touchpoints fired to a Redis sink, "stream".
class PgOutboxTest : public PgStoreTest {
 protected:
  PgOutboxTest() {
    std::string yaml(kConfig);
    const std::string sinks = "sinks: [{name: q, type: queue}]";
    yaml.replace(yaml.find(sinks), sinks.size(),
                 "sinks: [{name: stream, type: redis, url: \"redis://127.0.0.1:9/0\"}]");
    rules_.Swap(testing::MustLoad(yaml));
  }
  // `n` buyers' touchpoints fired: 2n outbox entries, due at `now`.
  Instant Fire(PgStore& store, int n) {
    const Instant at = At("2026-12-04T10:00:00Z");
    Buy(store, n, at);
    FakeClock clock(at + std::chrono::hours(2));
    Scheduler scheduler(store, clock, rules_);
    // Each when due: the cap moves the second steps to the next day.
    for (;;) {
      auto next = scheduler.NextWakeup();
      EXPECT_TRUE(next.ok());
      if (!next.ok() || !*next) break;
      clock.Set(std::max(clock.Now(), **next));
      EXPECT_TRUE(scheduler.RunDue().ok());
    }
    EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 2 * n);
    return clock.Now();
  }
  // DueDeliveries(), failing the test (and empty) if it fails.
  static std::vector<OutboxItem> Due(PgStore& store, Instant now, std::size_t max, bool in_order) {
    auto due = store.DueDeliveries("stream", now, max, in_order);
    EXPECT_TRUE(due.ok()) << due.status().message();
    return due.ok() ? std::move(*due) : std::vector<OutboxItem>();
  }
  static std::set<std::int64_t> Ids(const std::vector<OutboxItem>& items) {
    std::set<std::int64_t> ids;
    for (const OutboxItem& i : items) ids.insert(i.id);
    return ids;
  }
  // Two daemons' stores: A claims one buyer's two deliveries, its session
  // ends, B takes them over.
  struct TakenOver {
    std::unique_ptr<PgStore> a, b;
    Instant now;
    std::vector<OutboxItem> a_due, b_due;
  } taken_over_;
  void ClaimedByATakenOverByB() {
    TakenOver& t = taken_over_;
    t.a = MustOpen();
    t.b = MustOpen();
    t.now = Fire(*t.a, 1);
    auto a_due = t.a->DueDeliveries("stream", t.now, 100, false);
    ASSERT_TRUE(a_due.ok()) << a_due.status().message();
    ASSERT_EQ(a_due->size(), 2u);
    EndTheFirstStoresSession();
    auto b_due = t.b->DueDeliveries("stream", t.now, 100, false);
    ASSERT_TRUE(b_due.ok()) << b_due.status().message();
    ASSERT_EQ(b_due->size(), 2u);
    t.a_due = std::move(*a_due);
    t.b_due = std::move(*b_due);
  }
  // Ends the session of the store opened first (the daemons' stores are
  // all "touchpointd": every session but the newest).
  void EndTheFirstStoresSession() {
    PgServer::Shared().Admin(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE "
        "datname = '" +
        db_->name() +
        "' AND application_name = 'touchpointd' "
        "AND pid <> (SELECT pid FROM pg_stat_activity WHERE datname = '" +
        db_->name() +
        "' AND application_name = 'touchpointd' ORDER BY "
        "backend_start DESC LIMIT 1)");
  }
  // `results` recorded by a store whose session was ended: on its new one.
  // (The new session's connection may take longer than a call waits for it
  // on a loaded machine: Unavailable, tried again as the dispatcher would.)
  static Status RecordOnItsNewSession(PgStore& store, const std::vector<DeliveryResult>& results) {
    Status recorded = store.RecordDeliveries(results);
    for (int i = 0; i < 250 && recorded.unavailable(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      recorded = store.RecordDeliveries(results);
    }
    return recorded;
  }
  // The URL of another role of the server: neither a superuser nor a
  // member of pg_read_all_stats, so pg_stat_activity shows it the other
  // roles' sessions without their start times. Dropped with the fixture.
  std::string AnotherRolesUrl() {
    other_role_ = "other_" + db_->name();
    PgServer::Shared().Admin("CREATE ROLE " + other_role_ + " LOGIN");
    auto conn = pg::Connection::Open(db_->url(), "test");
    conn->Exec("GRANT ALL ON SCHEMA public TO " + other_role_ +
               "; GRANT ALL ON ALL TABLES IN SCHEMA public TO " + other_role_ +
               "; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + other_role_);
    std::string url = db_->url();
    const std::string user = "touchpoint@";
    url.replace(url.find(user), user.size(), other_role_ + "@");
    return url;
  }
  std::unique_ptr<PgStore> OpenAsAnotherRole() {
    auto store = PgStore::Open(AnotherRolesUrl(), rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }
  ~PgOutboxTest() override {
    if (other_role_.empty()) return;
    pg::Connection::Open(db_->url(), "test")->Exec("DROP OWNED BY " + other_role_);
    PgServer::Shared().Admin("DROP ROLE IF EXISTS " + other_role_);
  }
  std::string other_role_;
  static DeliveryResult Delivered(const OutboxItem& item, Instant at) {
    DeliveryResult r;
    r.id = item.id;
    r.touchpoint = item.touchpoint;
    r.at = at;
    r.history = "delivered";
    return r;
  }
};

TEST_F(PgOutboxTest, TwoDaemonsNeverAttemptOneDeliveryAtOnce) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 5);
  auto a_due = a->DueDeliveries("stream", now, 4, false);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 4u);
  // A asks again (its attempts still in flight): the same ones are its own.
  EXPECT_EQ(Ids(Due(*a, now, 4, false)), Ids(*a_due));
  auto b_due = b->DueDeliveries("stream", now, 100, false);
  ASSERT_TRUE(b_due.ok());
  EXPECT_EQ(b_due->size(), 6u);
  for (std::int64_t id : Ids(*b_due)) EXPECT_EQ(Ids(*a_due).count(id), 0u) << id;
  // B's result for one of A's deliveries is not B's to record.
  ASSERT_TRUE(b->RecordDeliveries(std::vector<DeliveryResult>{Delivered((*a_due)[0], now)}).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 10);
  std::vector<DeliveryResult> done;
  for (const OutboxItem& i : *a_due) done.push_back(Delivered(i, now));
  ASSERT_TRUE(a->RecordDeliveries(done).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 6);
  EXPECT_EQ(a->TakenOver() + b->TakenOver(), 0);
}

TEST_F(PgOutboxTest, TheDeliveriesOfADaemonThatDiedAreTakenOverAndCounted) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 100, false);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 6u);
  // Held while A lives: B looks again within the takeover poll.
  EXPECT_TRUE(Due(*b, now, 100, false).empty());
  auto next = b->NextDeliveryAfter("stream", now);
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, now + pgstore::kTakeoverPoll);
  a.reset();
  std::vector<OutboxItem> taken;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    auto again = b->DueDeliveries("stream", now, 100, false);
    ASSERT_TRUE(again.ok());
    taken = std::move(*again);
    if (taken.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Ids(taken), Ids(*a_due));
  // Each may have reached the sink from A already: counted.
  EXPECT_EQ(b->TakenOver(), 6);
}

// A daemon's own connection replaced (here its session ended) while its
// attempts are in flight: its new session claims them again, and they are
// its own, not taken over from another daemon (nothing reached the sink
// twice); its results for them are recorded.
TEST_F(PgOutboxTest, ADaemonsOwnAttemptsClaimedAgainAfterItsSessionEndsAreNotTakenOver) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 100, false);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 6u);
  const std::string claims = "SELECT COUNT(DISTINCT (claim_pid, claim_start)) FROM deliveries";
  const std::int64_t first_pid =
      Count("SELECT MIN(claim_pid) FROM deliveries WHERE claim_pid IS NOT NULL");
  EXPECT_EQ(Count(claims), 1);
  db_->EndSessions();
  std::vector<OutboxItem> again;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (again.empty() && std::chrono::steady_clock::now() < deadline) {
    auto due = a->DueDeliveries("stream", now, 100, false);
    if (due.ok()) again = std::move(*due);  // else reconnecting
    if (again.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Ids(again), Ids(*a_due));
  // Claimed again by another session of A's (the first one ended).
  EXPECT_EQ(Count(claims), 1);
  EXPECT_NE(Count("SELECT MIN(claim_pid) FROM deliveries"), first_pid);
  EXPECT_EQ(a->TakenOver(), 0);
  std::vector<DeliveryResult> done;
  for (const OutboxItem& i : *a_due) done.push_back(Delivered(i, now));
  ASSERT_TRUE(a->RecordDeliveries(done).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 0);
}

TEST_F(PgOutboxTest, AResultFromASessionThatWasTakenOverIsNotRecorded) {
  // A's session ends (its connection cut); B takes the deliveries over.
  ASSERT_NO_FATAL_FAILURE(ClaimedByATakenOverByB());
  const auto& [a, b, now, a_due, b_due] = taken_over_;
  // A's attempts finish: on a new session, they are no longer A's.
  std::vector<DeliveryResult> late = {Delivered(a_due[0], now), Delivered(a_due[1], now)};
  Status recorded = RecordOnItsNewSession(*a, late);
  ASSERT_TRUE(recorded.ok()) << recorded.message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 2);
  // B's own result is recorded.
  ASSERT_TRUE(b->RecordDeliveries(std::vector<DeliveryResult>{Delivered(b_due[0], now)}).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 1);
}

// The same once the daemon that took a delivery over has recorded its own
// attempt (a retry: the delivery is claimed by nobody until its next
// attempt): the first daemon's late result (here a dead letter) changes
// nothing, and the same result recorded twice (a retry after a COMMIT whose
// outcome was not heard) adds nothing the second time.
TEST_F(PgOutboxTest, ALateResultAfterTheTakeOverWasRecordedChangesNothing) {
  // A's session ends (its connection cut); B takes the deliveries over.
  ASSERT_NO_FATAL_FAILURE(ClaimedByATakenOverByB());
  const auto& [a, b, now, a_due, b_due] = taken_over_;
  DeliveryResult retry = Delivered(b_due[0], now);
  retry.kind = DeliveryResult::Kind::kRetry;
  retry.attempts = 1;
  retry.next_attempt_at = now + std::chrono::minutes(5);
  retry.error = "B: XADD refused";
  retry.history = "B's retry";
  ASSERT_TRUE(b->RecordDeliveries(std::vector<DeliveryResult>{retry}).ok());
  ASSERT_TRUE(b->RecordDeliveries(std::vector<DeliveryResult>{retry}).ok());  // again
  // A's attempt of it ends, dead-lettered, once A has a new session.
  DeliveryResult dead = Delivered(a_due[0], now);
  ASSERT_EQ(dead.id, retry.id);
  dead.kind = DeliveryResult::Kind::kDead;
  dead.attempts = 7;
  dead.error = "A: gave up";
  dead.history = "A's dead letter";
  Status recorded = RecordOnItsNewSession(*a, {dead});
  ASSERT_TRUE(recorded.ok()) << recorded.message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries WHERE state = 1"), 0);
  EXPECT_EQ(Count("SELECT attempts FROM deliveries WHERE id = " + std::to_string(retry.id)), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoint_history WHERE reason = 'B''s retry'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoint_history WHERE reason = 'A''s dead letter'"), 0);
}

TEST_F(PgOutboxTest, AnOrderedSinkHasOneDelivererUntilItsSessionEnds) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 2u);
  EXPECT_LT((*a_due)[0].id, (*a_due)[1].id);
  // The rest wait for A, in order, even those A has not claimed.
  EXPECT_TRUE(Due(*b, now, 100, true).empty());
  a.reset();
  std::vector<OutboxItem> taken;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    taken = Due(*b, now, 100, true);
    if (taken.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(taken.size(), 6u);
  for (std::size_t i = 1; i < taken.size(); ++i) EXPECT_LT(taken[i - 1].id, taken[i].id);
  EXPECT_EQ(b->TakenOver(), 2);
}

// Daemons on two roles of the server: each sees the other's sessions in
// pg_stat_activity without their start times. A claim of a session it
// cannot tell is the claimer's is held while that process lives (else
// every claim of the other role's daemons would look dead, and be taken
// over mid-flight), and taken over once it is gone.
TEST_F(PgOutboxTest, AClaimOfAnotherRolesLiveSessionIsHeldUntilItEnds) {
  auto a = MustOpen();
  auto b = OpenAsAnotherRole();
  ASSERT_NE(b, nullptr);
  const Instant now = Fire(*a, 2);
  auto a_due = a->DueDeliveries("stream", now, 2, false);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 2u);
  auto b_due = b->DueDeliveries("stream", now, 100, false);
  ASSERT_TRUE(b_due.ok()) << b_due.status().message();
  ASSERT_EQ(b_due->size(), 2u);
  for (std::int64_t id : Ids(*b_due)) EXPECT_EQ(Ids(*a_due).count(id), 0u) << id;
  // Each asks again: its own, and none of the other's.
  EXPECT_EQ(Ids(Due(*a, now, 100, false)), Ids(*a_due));
  EXPECT_EQ(Ids(Due(*b, now, 100, false)), Ids(*b_due));
  EXPECT_EQ(a->TakenOver() + b->TakenOver(), 0);
  a.reset();
  std::vector<OutboxItem> taken;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (taken.size() < 4 && std::chrono::steady_clock::now() < deadline) {
    auto again = b->DueDeliveries("stream", now, 100, false);
    ASSERT_TRUE(again.ok());
    taken = std::move(*again);
    if (taken.size() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(taken.size(), 4u);
  EXPECT_EQ(b->TakenOver(), 2);
}

// A claim made by a session that started after the claiming transaction
// first read the server's sessions (which it keeps to its end) is not
// taken for a dead session's: the session is live, only missing there.
TEST_F(PgOutboxTest, AClaimOfASessionNewerThanTheTransactionsViewIsHeld) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 1);
  auto c = pg::Connection::Open(db_->url(), "test");
  pg::Transaction txn(*c);
  c->Exec("SELECT COUNT(*) FROM pg_stat_activity");  // the sessions as of now, kept
  pg::Result me = c->Exec(
      "SELECT pg_backend_pid(), (extract(epoch FROM backend_start) * 1000000)::bigint FROM "
      "pg_stat_activity WHERE pid = pg_backend_pid()");
  // Not started when the transaction began: backend_start is in microseconds.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto b = MustOpen();
  auto b_due = b->DueDeliveries("stream", now, 100, false);
  ASSERT_TRUE(b_due.ok()) << b_due.status().message();
  ASSERT_EQ(b_due->size(), 2u);
  pg::Result taken =
      c->Run(pgstore::ClaimDueStatement(false), pg::Params()
                                                    .Add("stream")
                                                    .Add(sql::Ms(now))
                                                    .Add(std::int64_t{100})
                                                    .Add(me.Int64(0, 0))
                                                    .Add(me.Int64(0, 1))
                                                    .AddArray(std::vector<std::int64_t>())
                                                    .AddArray(std::vector<std::int64_t>()));
  EXPECT_EQ(taken.rows(), 0);
}

// An ordered sink's events claimed by a session that has ended, whose
// process id now names a live process this role cannot see the start of
// (here another role's session): the sink's lock holder takes them over
// from the first, in order, rather than sending the later ones first.
TEST_F(PgOutboxTest, AnOrderedSinksDeadClaimsUnderAnInvisibleProcessIdAreTakenInOrder) {
  auto a = OpenAsAnotherRole();
  ASSERT_NE(a, nullptr);
  const Instant now = Fire(*a, 3);
  // A session of the server's superuser: its start is hidden from A's role.
  auto c = pg::Connection::Open(db_->url(), "test");
  c->Exec(
      "UPDATE deliveries SET claim_pid = pg_backend_pid(), claim_start = 1 WHERE id IN "
      "(SELECT id FROM deliveries ORDER BY id LIMIT 2)");
  auto taken = a->DueDeliveries("stream", now, 100, true);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  for (std::size_t i = 1; i < taken->size(); ++i) EXPECT_LT((*taken)[i - 1].id, (*taken)[i].id);
  EXPECT_EQ(a->TakenOver(), 2);
}

// A daemon that stops delivering an ordered sink (a reload without it, or
// its circuit open: it cannot reach the stream) lets it go: another daemon
// delivers it from the first event on, those the first had claimed
// included, and nothing counts as taken over.
TEST_F(PgOutboxTest, AnOrderedSinkLetGoIsDeliveredByAnotherFromItsFirstEvent) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 2u);
  EXPECT_TRUE(Due(*b, now, 100, true).empty());
  // Taken again by the same session (as every pass does): let go once is
  // enough all the same.
  ASSERT_EQ(Due(*a, now, 2, true).size(), 2u);
  ASSERT_TRUE(a->LetGoOfSink("stream").ok());
  ASSERT_TRUE(a->LetGoOfSink("stream").ok());  // nothing held: nothing to do
  auto taken = b->DueDeliveries("stream", now, 100, true);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  EXPECT_EQ((*taken)[0].id, (*a_due)[0].id);
  for (std::size_t i = 1; i < taken->size(); ++i) EXPECT_LT((*taken)[i - 1].id, (*taken)[i].id);
  EXPECT_EQ(b->TakenOver(), 0);
  // Now B's: A waits.
  EXPECT_TRUE(Due(*a, now, 100, true).empty());
}

// A daemon whose connection was replaced lets an ordered sink go before
// its new session claimed anything: what its earlier session claimed is
// given up too (nothing of it is in flight), so the next deliverer counts
// none of it as taken over. Then it sees the sink is another daemon's.
TEST_F(PgOutboxTest, AnOrderedSinkLetGoOnANewSessionGivesUpTheEarlierSessionsClaims) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 2u);
  auto b = MustOpen();
  EndTheFirstStoresSession();
  ASSERT_TRUE(Reconnected([&] { return a->LetGoOfSink("stream"); }).ok());
  auto taken = Reconnected([&] { return b->DueDeliveries("stream", now, 100, true); });
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  EXPECT_EQ((*taken)[0].id, (*a_due)[0].id);
  EXPECT_EQ(b->TakenOver(), 0);
  EXPECT_FALSE(b->DeliveredElsewhere("stream"));
  EXPECT_TRUE(Due(*a, now, 100, true).empty());
  EXPECT_TRUE(a->DeliveredElsewhere("stream"));
}

}  // namespace
}  // namespace tp
