// The PostgreSQL store losing its connection: calls fail as Unavailable
// and the next reopens it (on a thread of its own, store/pg/session.h), a
// firing pass or a group losing theirs, a server cut off, and one found
// answering again; the reader's threads too.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cut_proxy.h"
#include "harness.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg/session.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"

namespace tp {
namespace {

using testing::At;
using ::testing::HasSubstr;
using testing::PgServer;
using testing::PgStoreTest;

TEST_F(PgStoreTest, ALostConnectionIsUnavailableThenReopened) {
  auto store = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 2, at);
  const Instant due = at + std::chrono::hours(2);
  auto claimed = store->TakeDue(due, 100);
  ASSERT_TRUE(claimed.ok());
  // An administrator (or a failover) ends every session of the database.
  db_->EndSessions();
  std::vector<FiringOutcome> fired(claimed->size(), {FiringOutcome::Kind::kFired, due, {}});
  Status s = store->ApplyOutcomes(*claimed, fired);
  EXPECT_TRUE(s.unavailable()) << s.message();
  // Nothing was fired; the next pass reconnects and fires them.
  auto again = Reconnected([&] { return store->TakeDue(due, 100); });
  ASSERT_TRUE(again.ok()) << again.status().message();
  ASSERT_EQ(again->size(), 4u);
  ASSERT_TRUE(store->ApplyOutcomes(*again, fired).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 4);
}

// The connection lost in the middle of a firing pass (between TakeDue and
// ApplyOutcomes): the pass fails, its claim is gone with the session, and
// the next pass reconnects and fires.
TEST_F(PgStoreTest, AConnectionLostMidPassEndsThePassOnly) {
  auto store = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 2, at);
  const Instant due = at + std::chrono::hours(2);
  auto claimed = store->TakeDue(due, 100);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 4u);
  db_->EndSessions();
  auto caps = store->FiredBetween((*claimed)[0], at, due, true);
  ASSERT_FALSE(caps.ok());
  EXPECT_TRUE(caps.status().unavailable()) << caps.status().message();
  EXPECT_TRUE(store->Probe().ok());
  auto next = Reconnected([&] { return store->NextWakeup(); });
  ASSERT_TRUE(next.ok()) << next.status().message();
  FakeClock clock(due);
  Scheduler scheduler(*store, clock, rules_);
  auto ran = scheduler.RunDue();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  EXPECT_EQ(ran->fired, 2u);  // the cap: one a day each
}

// The claim's session ended by the server after its last write and before
// its COMMIT: the claim fails (Unavailable), and what it wrote is gone;
// COMMIT is never sent on a new connection, where it would only warn.
TEST_F(PgStoreTest, AClaimWhoseSessionEndsBeforeItsCommitFails) {
  auto admin = pg::Connection::Open(db_->url(), "test");
  admin->Exec("CREATE TABLE claimed (x INT)");
  pgstore::Session session(db_->url(), "touchpointd-fire");
  session.BeginClaim();
  const std::int64_t pid = session.identity().pid;
  Status s = session.FinishClaim("finish the claim", [&] {
    session.conn().Exec("INSERT INTO claimed VALUES (1)");
    admin->Exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.unavailable()) << s.message();
  EXPECT_EQ(admin->Exec("SELECT COUNT(*) FROM claimed").Int64(0, 0), 0);
  // The next claim reconnects and commits.
  Status next = Status::Error("not tried");
  for (int i = 0; i < 100 && !next.ok(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    next = session.Atomically("reconnect", [&] { session.conn().Exec("SELECT 1"); });
  }
  ASSERT_TRUE(next.ok()) << next.message();
  session.BeginClaim();
  EXPECT_TRUE(session
                  .FinishClaim("finish the claim",
                               [&] { session.conn().Exec("INSERT INTO claimed VALUES (2)"); })
                  .ok());
  EXPECT_EQ(admin->Exec("SELECT COUNT(*) FROM claimed").Int64(0, 0), 1);
}

// The session ended between two statements of Atomically()'s transaction
// (an administrator, a failover): the next statement's conn() fails, and
// does not open another connection for the rest of the transaction's
// statements to run on, outside it, with the transaction referring to the
// connection gone.
TEST_F(PgStoreTest, AnAtomicCallWhoseSessionEndsMidWayFailsWhole) {
  auto admin = pg::Connection::Open(db_->url(), "test");
  admin->Exec("CREATE TABLE written (x INT)");
  pgstore::Session session(db_->url(), "touchpointd");
  const std::int64_t pid = session.identity().pid;
  bool reached_the_end = false;
  Status s = session.Atomically("write twice", [&] {
    session.conn().Exec("INSERT INTO written VALUES (1)");
    admin->Exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
    session.conn().Exec("INSERT INTO written VALUES (2)");
    reached_the_end = true;
  });
  EXPECT_TRUE(s.unavailable()) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("lost inside a transaction"));
  EXPECT_FALSE(reached_the_end);
  EXPECT_EQ(admin->Exec("SELECT COUNT(*) FROM written").Int64(0, 0), 0);
  // The next call reconnects.
  Status next = Status::Error("not tried");
  for (int i = 0; i < 100 && !next.ok(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    next =
        session.Atomically("write", [&] { session.conn().Exec("INSERT INTO written VALUES (3)"); });
  }
  ASSERT_TRUE(next.ok()) << next.message();
  EXPECT_EQ(admin->Exec("SELECT string_agg(x::text, ',') FROM written").Text(0, 0), "3");
}

TEST_F(PgStoreTest, AGroupLosingItsConnectionFailsUntilRolledBack) {
  auto store = MustOpen();
  FakeClock clock(At("2026-12-04T10:00:00Z"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "p", 1, 1, clock.Now(), ""}).ok());
  db_->EndSessions();
  // What the group wrote is gone: no call may run outside it.
  auto lost = scheduler.Ingest({"o2", "b2", "p", 1, 1, clock.Now(), ""});
  EXPECT_FALSE(lost.ok());
  EXPECT_TRUE(lost.status().unavailable()) << lost.status().message();
  EXPECT_TRUE(store->Commit().unavailable());
  EXPECT_TRUE(store->Rollback().ok());
  ASSERT_TRUE(Reconnected([&] {
                return scheduler.Ingest({"o3", "b3", "p", 1, 1, clock.Now(), ""});
              }).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 1);
}

// The loop's session's limits (PgStore::SetAnswerLimit): the server ends
// a statement past the statement timeout itself (unavailable for now: try
// later), and one the server does not answer at all gives the connection
// up past the answer limit; the connection that replaces a lost one keeps
// both.
TEST_F(PgStoreTest, ASessionsLimitsHoldOnTheConnectionsThatReplaceIt) {
  auto admin = pg::Connection::Open(db_->url(), "test");
  pgstore::Session session(db_->url(), "touchpointd");
  session.set_answer_limit(std::chrono::milliseconds(2000));
  session.set_statement_timeout(std::chrono::milliseconds(200));
  const auto slow = [&] {
    return session.Atomically("sleep", [&] { session.conn().Exec("SELECT pg_sleep(3)"); });
  };
  Status s = slow();
  EXPECT_TRUE(s.unavailable()) << s.message();  // try later
  EXPECT_THAT(s.message(), HasSubstr("statement timeout"));
  admin->Exec("SELECT pg_terminate_backend(" + std::to_string(session.identity().pid) + ", 5000)");
  Status next = Status::Error("not tried");
  for (int i = 0; i < 100 && !next.ok(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    next = session.Atomically("reconnect", [&] { session.conn().Exec("SELECT 1"); });
  }
  ASSERT_TRUE(next.ok()) << next.message();
  s = slow();
  EXPECT_TRUE(s.unavailable()) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("statement timeout"));
  const auto pid = static_cast<pid_t>(session.identity().pid);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{pid};
  s = session.Atomically("frozen", [&] { session.conn().Exec("SELECT 1"); });
  EXPECT_TRUE(s.unavailable()) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("did not answer within 2000 ms"));
}

// The server cut off while nobody asks: the attempt to reconnect that was
// under way fails (no answer within the connect timeout) with nobody to
// take its outcome. Once the server is back, the next call starts afresh
// rather than reporting that old failure and pausing a second more.
TEST_F(PgStoreTest, AFailedReconnectNobodyAskedForIsNotHeldAgainstTheNextCall) {
  testing::CutProxy proxy(PgServer::Shared().url());
  auto opened = PgStore::Open(proxy.url(db_->name()), rules_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  PgStore& store = **opened;
  ASSERT_TRUE(store.NextWakeup().ok());
  proxy.Cut();
  // The connection is gone (the first call may be the one to find it
  // closed); the attempt to reopen it gets no answer.
  Status cut = Status::Ok();
  for (int i = 0; i < 100; ++i) {
    auto r = store.NextWakeup();
    ASSERT_FALSE(r.ok());
    cut = r.status();
    if (cut.message().find("connecting, no answer yet") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(cut.message(), HasSubstr("connecting, no answer yet"));
  // The attempt fails after the connect timeout (2 s), and more than a
  // second passes before anyone asks again.
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  proxy.Restore();
  auto back = store.NextWakeup();
  // At once, or still connecting on a busy machine: never that old failure.
  if (!back.ok()) {
    EXPECT_THAT(back.status().message(), HasSubstr("connecting, no answer yet"));
  }
  EXPECT_TRUE(Reconnected([&] { return store.NextWakeup(); }).ok());
}

// The daemon's probe found the server answering again (ServerAnswers): an
// attempt that failed less than a second ago no longer holds the next
// call back, in every store of the process (the loop's and each thread's),
// so purchases are taken and touchpoints fired as soon as the daemon
// resumes.
TEST_F(PgStoreTest, AServerFoundAnsweringIsReconnectedToAtOnceByEveryStore) {
  testing::CutProxy proxy(PgServer::Shared().url());
  std::vector<std::unique_ptr<PgStore>> stores;
  for (const char* name : {"touchpointd", "touchpointd-fire"}) {
    auto opened = PgStore::Open(proxy.url(db_->name()), rules_, name);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    stores.push_back(std::move(*opened));
  }
  proxy.Refuse();
  // A call finds the connection closed, or tries to reopen it: refused
  // (each store in turn, so that both refusals are within the second).
  std::vector<Status> refused(stores.size(), Status::Ok());
  const auto all_refused = [&] {
    for (const Status& s : refused) {
      if (s.message().find("cannot connect") == std::string::npos) return false;
    }
    return true;
  };
  for (int i = 0; i < 100 && !all_refused(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (std::size_t k = 0; k < stores.size(); ++k) {
      if (refused[k].message().find("cannot connect") != std::string::npos) continue;
      auto r = stores[k]->NextWakeup();
      ASSERT_FALSE(r.ok());
      refused[k] = r.status();
    }
  }
  ASSERT_TRUE(all_refused()) << refused[0].message() << "; " << refused[1].message();
  proxy.Restore();
  for (auto& store : stores) {
    auto paused = store->NextWakeup();  // within the second after the refusal
    ASSERT_FALSE(paused.ok());
    EXPECT_THAT(paused.status().message(), HasSubstr("reconnecting"));
  }
  PgStore::ServerAnswers();
  for (auto& store : stores) {
    auto back = store->NextWakeup();
    if (!back.ok()) {  // a busy machine: still connecting, never paused
      EXPECT_THAT(back.status().message(), HasSubstr("connecting, no answer yet"));
    }
  }
  for (auto& store : stores) {
    EXPECT_TRUE(Reconnected([&] { return store->NextWakeup(); }).ok());
  }
}

// A URL of two hosts without target_session_attrs=read-write: with the
// primary gone, the store's sessions reconnect to its standby, which
// answers and refuses every write (25006). The probe says so: the daemon
// then pauses with that reason, instead of answering each purchase 503
// while `touchpoint_database_up` says 1.
TEST_F(PgStoreTest, AProbeThatFindsAStandbySaysSo) {
  PgServer primary;
  auto db = primary.NewDatabase();
  // Started again once stopped, however the test ends, so that the
  // database can be dropped.
  struct StartedAgain {
    PgServer& server;
    bool stopped = false;
    ~StartedAgain() {
      if (stopped) server.Start();
    }
  } started_again{primary};
  const std::string prefix = "postgresql://touchpoint@";
  auto opened = PgStore::Open(db->url(), rules_);  // the schema
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  opened->reset();
  PgServer standby(PgServer::StandbyOf{primary});
  ASSERT_EQ(primary.url().rfind(prefix, 0), 0u) << primary.url();
  const std::string url =
      primary.url() + "," + standby.url().substr(prefix.size()) + "/" + db->name();
  auto store = PgStore::Open(url, rules_);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_TRUE((*store)->Probe().ok());

  primary.Stop();
  started_again.stopped = true;
  // A purchase: refused while the sessions reconnect, then by the standby.
  const Instant at = At("2026-12-04T10:00:00Z");
  FakeClock clock(at);
  Scheduler scheduler(**store, clock, rules_);
  Status write = Status::Ok();
  for (int i = 0; i < 50 && write.message().find("read-only") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto out = scheduler.Ingest({"o1", "b1", "p", 1, 1, at, ""});
    ASSERT_FALSE(out.ok());
    write = out.status();
  }
  EXPECT_TRUE(write.unavailable()) << write.message();
  EXPECT_THAT(write.message(), HasSubstr("read-only"));
  Status probed = (*store)->Probe();
  EXPECT_TRUE(probed.unavailable()) << probed.message();
  EXPECT_THAT(probed.message(), HasSubstr("the server is a standby"));
}

// The reader's threads (leases and acks, counts) try to reopen a lost
// connection at most once a second while the server does not answer: the
// leases queued meanwhile fail at once, instead of each waiting out a
// connect attempt of its own (up to 2 s where packets are dropped). Once
// the server is found answering (ServerAnswers), at once.
TEST_F(PgStoreTest, TheReadersThreadsTryAServerThatDoesNotAnswerOnceASecond) {
  MustOpen();  // the schema
  testing::CutProxy proxy(PgServer::Shared().url());
  auto reader = PgReader::Open(proxy.url(db_->name()), 0);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::mutex mutex;
  std::vector<Status> answers;
  const auto lease = [&] {
    (*reader)->Lease("q", 10, std::chrono::seconds(30), At("2026-12-06T10:00:00Z"),
                     [&](StatusOr<std::vector<LeasedRow>> r) {
                       const std::lock_guard lock(mutex);
                       answers.push_back(r.status());
                     });
  };
  const auto await_answers = [&](std::size_t n) {
    for (int i = 0; i < 1000; ++i) {
      {
        const std::lock_guard lock(mutex);
        if (answers.size() >= n) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "no answer";
  };
  proxy.Refuse();
  for (int i = 0; i < 6; ++i) lease();
  await_answers(6);
  int tried = 0, paced = 0;
  for (const Status& s : answers) {
    EXPECT_TRUE(s.unavailable()) << s.message();
    if (s.message().find("tried again within a second") != std::string::npos) {
      ++paced;
    } else if (s.message().find("cannot connect") != std::string::npos) {
      ++tried;
    }
  }
  EXPECT_EQ(tried, 1) << answers.front().message();
  EXPECT_GE(paced, 4);  // a first may find the old connection closed

  proxy.Restore();
  pgstore::Session::ServerAnswers();
  lease();
  await_answers(7);
  EXPECT_TRUE(answers.back().ok()) << answers.back().message();
}

}  // namespace
}  // namespace tp
