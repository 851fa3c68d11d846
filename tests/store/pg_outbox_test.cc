// Push deliveries of the PostgreSQL store where several daemons share one
// database: a delivery attempted by one daemon at a time, taken over (and
// counted) when its daemon dies, but not when its own session was
// replaced, a late result from a session taken over ignored, a result
// recorded again after its commit's answer was lost, and daemons on
// another role; a touchpoint's letters replayed while another daemon
// replays or kills its other sink's. Ordered sinks:
// pg_ordered_sink_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "cut_proxy.h"
#include "harness.h"
#include "pg_server.h"
#include "store/pg/outbox.h"
#include "store/pg_outbox_fixture.h"
#include "store/pg_store.h"
#include "store/values.h"

namespace tp {
namespace {

using testing::PgOutboxTest;
using testing::PgServer;

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

// PostgreSQL restarted while two daemons' attempts are in flight: every
// session ended with it, but the daemons live. For a while after the
// server's start (kRestartGrace) a third daemon does not take those claims
// over (it would send them again), and their own daemon claims them again
// as its own, not taken over, and records its results. Past that, the
// claims of the daemon that never came back are taken over, counted.
TEST_F(PgOutboxTest, AfterAServerRestartADaemonsAttemptsAreItsOwnToClaimAgain) {
  PgServer server;
  // The database dropped before its server stops, however the test ends
  // (the stores, declared after this, close first).
  struct DropFirst {
    std::unique_ptr<PgServer::Database>& db;
    ~DropFirst() { db.reset(); }
  } drop_first{db_};
  db_ = server.NewDatabase();
  auto a = MustOpen();
  auto b = MustOpen();
  auto c = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 3, false);
  auto c_due = c->DueDeliveries("stream", now, 3, false);
  ASSERT_TRUE(a_due.ok() && c_due.ok());
  ASSERT_EQ(a_due->size(), 3u);
  ASSERT_EQ(c_due->size(), 3u);
  server.Stop();
  server.Start();
  PgStore::ServerAnswers();
  auto b_due = Reconnected([&] { return b->DueDeliveries("stream", now, 100, false); });
  ASSERT_TRUE(b_due.ok()) << b_due.status().message();
  auto again = Reconnected([&] { return a->DueDeliveries("stream", now, 100, false); });
  ASSERT_TRUE(again.ok()) << again.status().message();
  // Both within the grace: a machine too slow for that proves nothing here.
  const std::int64_t up_ms =
      Count("SELECT (extract(epoch FROM now() - pg_postmaster_start_time()) * 1000)::bigint");
  if (up_ms >= pgstore::kRestartGrace.count()) {
    GTEST_SKIP() << "the claims came " << up_ms << " ms after the server's start";
  }
  EXPECT_TRUE(b_due->empty()) << b_due->size() << " taken over";
  EXPECT_EQ(Ids(*again), Ids(*a_due));
  EXPECT_EQ(a->TakenOver() + b->TakenOver(), 0);
  std::vector<DeliveryResult> done;
  for (const OutboxItem& i : *a_due) done.push_back(Delivered(i, now));
  ASSERT_TRUE(a->RecordDeliveries(done).ok());
  // C never came back: its claims are B's once the grace is over.
  std::vector<OutboxItem> taken;
  const auto deadline =
      std::chrono::steady_clock::now() + pgstore::kRestartGrace + std::chrono::seconds(10);
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto due = b->DueDeliveries("stream", now, 100, false);
    ASSERT_TRUE(due.ok()) << due.status().message();
    taken = std::move(*due);
  }
  EXPECT_GE(Count("SELECT (extract(epoch FROM now() - pg_postmaster_start_time()) * 1000)::bigint"),
            pgstore::kRestartGrace.count());
  EXPECT_EQ(Ids(taken), Ids(*c_due));
  EXPECT_EQ(b->TakenOver(), 3);
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
  const DeliveryResult retry = Retried(b_due[0], now, "B: XADD refused", "B's retry");
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

// The answer to the COMMIT of a record is lost: the results were recorded,
// but the daemon cannot know, and records them again (as the dispatcher
// does when the store was away) on a new session. That changes nothing:
// each result's history line is written once, and the retry's row is not
// updated again (its claim went with the first record).
TEST_F(PgOutboxTest, ResultsRecordedAgainAfterTheAnswerToTheirCommitWasLostChangeNothing) {
  testing::CutProxy proxy(PgServer::Shared().url());
  auto opened = PgStore::Open(proxy.url(db_->name()), rules_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  PgStore& a = **opened;
  const Instant now = Fire(a, 1);
  const std::vector<OutboxItem> due = Due(a, now, 100, false);
  ASSERT_EQ(due.size(), 2u);
  const DeliveryResult retry = Retried(due[1], now, "XADD refused", "retried");
  const std::vector<DeliveryResult> results{Delivered(due[0], now), retry};
  proxy.LoseTheAnswerToCommit();
  const Status lost = a.RecordDeliveries(results);
  EXPECT_TRUE(lost.unavailable()) << lost.message();
  ASSERT_TRUE(proxy.answer_lost());
  // Recorded all the same.
  const std::string row = "SELECT COUNT(*) FROM deliveries WHERE claim_pid IS NULL AND id = " +
                          std::to_string(retry.id);
  const std::string lines =
      "SELECT COUNT(*) FROM touchpoint_history WHERE reason IN ('delivered', 'retried')";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 1);
  EXPECT_EQ(Count(row), 1);
  EXPECT_EQ(Count(lines), 2);
  const Status again = RecordOnItsNewSession(a, results);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 1);
  EXPECT_EQ(Count(row), 1);
  EXPECT_EQ(Count(lines), 2);
  EXPECT_EQ(a.TakenOver(), 0);
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

// What a daemon warns of at start: daemons on another role where either
// role cannot read the other's sessions' start times; none once both may
// (here: a superuser, and a role granted pg_read_all_stats).
TEST_F(PgOutboxTest, DaemonsOnRolesThatCannotSeeEachOthersSessionsAreNamed) {
  auto a = MustOpen();
  auto alone = a->OtherDaemonsRoles();
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  EXPECT_TRUE(alone->empty());
  auto b = OpenAsAnotherRole();
  ASSERT_NE(b, nullptr);
  const auto roles = [](PgStore& store) {
    auto r = store.OtherDaemonsRoles();
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::vector<std::string>{"(failed)"};
  };
  EXPECT_EQ(roles(*b), std::vector<std::string>{"touchpoint"});
  EXPECT_EQ(roles(*a), std::vector<std::string>{other_role_});
  PgServer::Shared().Admin("GRANT pg_read_all_stats TO " + other_role_);
  EXPECT_TRUE(roles(*a).empty());
  EXPECT_TRUE(roles(*b).empty());
  // A member that does not inherit its roles' privileges reads no more.
  // (Granted again: from PostgreSQL 16 a grant keeps the inheritance it
  // was made with.)
  PgServer::Shared().Admin("ALTER ROLE " + other_role_ +
                           " NOINHERIT; REVOKE pg_read_all_stats FROM " + other_role_ +
                           "; GRANT pg_read_all_stats TO " + other_role_);
  EXPECT_EQ(roles(*b), std::vector<std::string>{"touchpoint"});
  EXPECT_EQ(roles(*a), std::vector<std::string>{other_role_});
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
                                                    .AddArray(std::vector<std::int64_t>())
                                                    .AddArray(std::vector<std::int64_t>()));
  EXPECT_EQ(taken.rows(), 0);
}

// A's attempts are still in flight when its session ends; B takes them
// over and records a retry (due again at once). A's next claim, on its new
// session, does not claim back what it is still attempting: B's now, so B
// attempts them again, and A's late result is not recorded over B's.
TEST_F(PgOutboxTest,
       ADeliveryTakenOverAndRecordedElsewhereIsNotClaimedBackWhileStillAttemptedHere) {
  ClaimedByATakenOverByB();
  TakenOver& t = taken_over_;
  std::vector<DeliveryResult> retried;
  for (const OutboxItem& i : t.b_due) {
    DeliveryResult r = Retried(i, t.now, "HTTP 503", "B's retry");
    r.next_attempt_at = t.now;  // due again at once
    retried.push_back(r);
  }
  ASSERT_TRUE(t.b->RecordDeliveries(retried).ok());
  const std::vector<std::int64_t> attempting = {t.a_due[0].id, t.a_due[1].id};
  auto again =
      Reconnected([&] { return t.a->DueDeliveries("stream", t.now, 100, false, attempting); });
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->empty()) << again->size() << " claimed back";
  EXPECT_EQ(Ids(Due(*t.b, t.now, 100, false)), Ids(t.a_due));
  // A's late result: B's claim stands, B's retry with it.
  ASSERT_TRUE(
      RecordOnItsNewSession(*t.a, std::vector<DeliveryResult>{Delivered(t.a_due[0], t.now)}).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"), 2);
  EXPECT_EQ(Count("SELECT MIN(attempts) FROM deliveries"), 1);
}

// One touchpoint fired to two sinks: its "stream" letter dead (the
// touchpoint `dead`), its "other" delivery pending. Another session of
// the test holds, uncommitted, what a daemon does to the "other" one.
class PgReplayRaceTest : public PgOutboxTest {
 protected:
  void SetUp() override {
    TwoSinks();
    a_ = MustOpen();
    now_ = Fire(*a_, 1);
    std::vector<DeliveryResult> results;
    for (const OutboxItem& i : Due(*a_, now_, 100, false)) {  // "stream"'s
      results.push_back(Dead(i, now_, "dead letter on stream"));
    }
    ASSERT_EQ(results.size(), 2u);
    ASSERT_TRUE(a_->RecordDeliveries(results).ok());
    touchpoint_ = results[0].touchpoint;
    letter_ = results[0].id;
    other_ = Count("SELECT id FROM deliveries WHERE sink = 'other' AND touchpoint = " +
                   std::to_string(touchpoint_));
    ASSERT_EQ(State(), 5);
  }
  std::int64_t State() {
    return Count("SELECT state FROM touchpoints WHERE id = " + std::to_string(touchpoint_));
  }
  // A replays the "stream" letter on a thread, while `held` is open; the
  // test commits `held` a moment later.
  void ReplayWhileHeld(pg::Connection& held) {
    StatusOr<OutboxStore::ReplayedOne> replayed = OutboxStore::ReplayedOne::kUnknown;
    std::thread replay([&] { replayed = a_->ReplayDeadLetter(letter_, now_); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    held.Exec("COMMIT");
    replay.join();
    ASSERT_TRUE(replayed.ok()) << replayed.status().message();
    EXPECT_EQ(*replayed, OutboxStore::ReplayedOne::kReplayed);
  }

  std::unique_ptr<PgStore> a_;
  Instant now_;
  std::int64_t touchpoint_ = 0, letter_ = 0, other_ = 0;
};

// The "other" delivery dies (kFailed, then the touchpoint marked dead)
// while the "stream" letter is replayed: the touchpoint stays dead.
TEST_F(PgReplayRaceTest, ALetterReplayedWhileASiblingDiesLeavesTheTouchpointDead) {
  auto held = pg::Connection::Open(db_->url(), "test");
  held->Exec("BEGIN");
  held->Exec("UPDATE deliveries SET state = 1, dead_at = 1, last_error = 'refused' WHERE id = " +
             std::to_string(other_));
  held->Exec("UPDATE touchpoints SET state = 5, reason = 'dead letter on other' WHERE id = " +
             std::to_string(touchpoint_) + " AND state IN (1, 5)");
  ReplayWhileHeld(*held);
  EXPECT_EQ(State(), 5);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries WHERE state = 1 AND touchpoint = " +
                  std::to_string(touchpoint_)),
            1);
}

// Another daemon replays the touchpoint's "other" letter at the same time
// (put back, the touchpoint locked, its revive finding "stream" still
// dead): once both are back, the touchpoint is fired again.
TEST_F(PgReplayRaceTest, TwoDaemonsReplayingATouchpointsTwoLettersAtOnceReviveIt) {
  auto c = pg::Connection::Open(db_->url(), "test");
  c->Exec("UPDATE deliveries SET state = 1, dead_at = 1, last_error = 'refused' WHERE id = " +
          std::to_string(other_));
  auto held = pg::Connection::Open(db_->url(), "test");
  held->Exec("BEGIN");
  held->Exec("UPDATE deliveries SET state = 0, attempts = 0, dead_at = NULL WHERE id = " +
             std::to_string(other_));
  held->Exec("SELECT id FROM touchpoints WHERE id = " + std::to_string(touchpoint_) +
             " FOR UPDATE");
  pg::Result revived = held->Exec(
      "UPDATE touchpoints t SET state = 1 WHERE t.id = " + std::to_string(touchpoint_) +
      " AND t.state = 5 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id "
      "AND d.state = 1) RETURNING id");
  ASSERT_EQ(revived.rows(), 0);  // "stream" is still dead, as it sees it
  ReplayWhileHeld(*held);
  EXPECT_EQ(State(), 1);
}

}  // namespace
}  // namespace tp
