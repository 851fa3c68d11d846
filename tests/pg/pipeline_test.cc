// The libpq layer's statements run together (lib/pg/pipeline.cc, libpq's
// pipeline mode) against a real server: answers in order, one implicit
// transaction, errors, each statement's snapshot, a connection lost
// mid-way.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <thread>

#include "connection_fixture.h"
#include "pg/connection.h"

namespace tp {
namespace {

using testing::AwaitLockWait;
using testing::PgConnectionTest;

TEST_F(PgConnectionTest, StatementsRunTogetherAnswerInOrderAsOneTransaction) {
  conn_->Exec("CREATE TABLE t (n BIGINT PRIMARY KEY)");
  const pg::Statement insert("INSERT INTO t VALUES ($1) RETURNING n * 10");
  const pg::Statement count("SELECT count(*) FROM t WHERE n <= $1");
  const pg::Statement each_run("SELECT $1::bigint + 1", pg::Statement::Plan::kEachRun);
  for (std::int64_t round = 0; round < 2; ++round) {  // prepared, then already so
    pg::Params one, two, upto, plus;
    one.Add(2 * round + 1);
    two.Add(2 * round + 2);
    upto.Add(std::int64_t{100});
    plus.Add(round);
    std::vector<pg::Result> r =
        conn_->RunTogether({{insert, one}, {insert, two}, {count, upto}, {each_run, plus}});
    ASSERT_EQ(r.size(), 4U);
    EXPECT_EQ(r[0].Int64(0, 0), (2 * round + 1) * 10);
    EXPECT_EQ(r[1].Int64(0, 0), (2 * round + 2) * 10);
    EXPECT_EQ(r[2].Int64(0, 0), 2 * round + 2);  // sees the inserts before it
    EXPECT_EQ(r[3].Int64(0, 0), round + 1);
  }
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM pg_prepared_statements").Int64(0, 0), 2);

  // A failure: its error, nothing of the others kept, the connection as
  // before (out of pipeline mode, no transaction left open).
  pg::Params five, dup;
  five.Add(std::int64_t{5});
  dup.Add(std::int64_t{1});
  try {
    conn_->RunTogether({{insert, five}, {insert, dup}, {count, five}});
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "23505") << e.what();
    EXPECT_NE(std::string(e.what()).find("INSERT INTO t"), std::string::npos) << e.what();
    EXPECT_FALSE(e.connection_lost());
  }
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 4);
  EXPECT_EQ(conn_->Run(count, pg::Params().Add(std::int64_t{100})).Int64(0, 0), 4);
  EXPECT_EQ(PQtransactionStatus(conn_->handle()), PQTRANS_IDLE);
  EXPECT_EQ(PQpipelineStatus(conn_->handle()), PQ_PIPELINE_OFF);
  EXPECT_TRUE(conn_->ok());

  // A statement prepared in a pipeline that failed after it stays
  // prepared (and known to be).
  const pg::Statement twice("SELECT $1::bigint * 2");
  try {
    conn_->RunTogether({{twice, five}, {insert, dup}});
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "23505") << e.what();
  }
  EXPECT_EQ(conn_->Run(twice, five).Int64(0, 0), 10);
  EXPECT_EQ(conn_->RunTogether({{twice, five}}).at(0).Int64(0, 0), 10);

  // Too many parameters: refused before anything is sent, the connection
  // as it was.
  pg::Params many;
  for (int i = 0; i < 65536; ++i) many.Add(std::int64_t{i});
  try {
    conn_->RunTogether({{insert, five}, {count, many}});
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_FALSE(e.transient()) << e.what();
    EXPECT_FALSE(e.connection_lost()) << e.what();
  }
  EXPECT_TRUE(conn_->ok());
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 4);

  // A statement that cannot be prepared fails alone, and is not taken as
  // prepared.
  const pg::Statement bad("SELECT * FROM no_such_table WHERE n = $1");
  for (int i = 0; i < 2; ++i) {
    try {
      conn_->RunTogether({{bad, five}});
      FAIL() << "no error";
    } catch (const pg::Error& e) {
      EXPECT_EQ(e.sqlstate(), "42P01") << e.what();
    }
  }

  // Inside a transaction: part of it.
  {
    pg::Transaction txn(*conn_);
    conn_->RunTogether({{insert, five}});
  }
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 4);  // rolled back with it
  {
    pg::Transaction txn(*conn_);
    conn_->RunTogether({{insert, five}});
    txn.Commit();
  }
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 5);
}

TEST_F(PgConnectionTest, AnErrorAtTheCommitOfStatementsRunTogetherIsTheServers) {
  conn_->Exec("CREATE TABLE t (n BIGINT, CONSTRAINT one UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)");
  const pg::Statement insert("INSERT INTO t VALUES ($1)");
  pg::Params one;
  one.Add(std::int64_t{1});
  try {
    conn_->RunTogether({{insert, one}, {insert, one}});  // both run; the commit fails
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "23505") << e.what();
    EXPECT_FALSE(e.connection_lost()) << e.what();
  }
  EXPECT_TRUE(conn_->ok());
  EXPECT_EQ(PQpipelineStatus(conn_->handle()), PQ_PIPELINE_OFF);
  EXPECT_EQ(PQtransactionStatus(conn_->handle()), PQTRANS_IDLE);
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 0);
  EXPECT_EQ(conn_->RunTogether({{insert, one}}).size(), 1U);
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 1);
}

TEST_F(PgConnectionTest, StatementsRunTogetherEachTakeTheirOwnSnapshot) {
  // As run one after the other: the second statement sees what another
  // session committed while the first waited for its lock, as a lease
  // sees the messages that the lease before it, holding the queue's turn,
  // moved.
  conn_->Exec("CREATE TABLE t (n BIGINT)");
  auto other = pg::Connection::Open(db_->url(), "other");
  other->Exec("BEGIN");
  other->Exec("SELECT pg_advisory_xact_lock(42)");
  other->Exec("INSERT INTO t VALUES (1)");
  const int pid = conn_->backend_pid();
  std::thread commit_later([&] {
    // The first statement waits for the lock.
    if (!AwaitLockWait(db_->url(), pid)) ADD_FAILURE() << "no lock wait";
    other->Exec("COMMIT");
  });
  const pg::Statement turn("SELECT pg_advisory_xact_lock($1)");
  const pg::Statement count("SELECT count(*) FROM t WHERE n >= $1");
  const pg::Statement held(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
      "AND classid = 0 AND objid = $1 AND objsubid = 1");
  pg::Params key, from;
  key.Add(std::int64_t{42});
  from.Add(std::int64_t{0});
  std::vector<pg::Result> r;
  try {
    r = conn_->RunTogether({{turn, key}, {count, from}, {held, key}});
  } catch (const pg::Error& e) {
    ADD_FAILURE() << e.what();
  }
  commit_later.join();
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[1].Int64(0, 0), 1);
  // The lock is held to the end of the statements, and no longer.
  EXPECT_EQ(r[2].Int64(0, 0), 1);
  EXPECT_EQ(conn_->Run(held, key).Int64(0, 0), 0);
}

TEST_F(PgConnectionTest, AConnectionLostMidPipelineSaysSoAndIsNotOk) {
  auto admin = pg::Connection::Open(db_->url(), "admin");
  admin->Exec("BEGIN");
  admin->Exec("SELECT pg_advisory_xact_lock(43)");
  const int pid = conn_->backend_pid();
  std::thread terminate_later([&] {
    if (!AwaitLockWait(db_->url(), pid)) ADD_FAILURE() << "no lock wait";  // mid-pipeline
    auto other = pg::Connection::Open(db_->url(), "other");
    other->Exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
  });
  const pg::Statement turn("SELECT pg_advisory_xact_lock($1)");
  const pg::Statement one("SELECT $1::bigint");
  pg::Params key, n;
  key.Add(std::int64_t{43});
  n.Add(std::int64_t{1});
  try {
    conn_->RunTogether({{turn, key}, {one, n}});
    ADD_FAILURE() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_TRUE(e.transient()) << e.sqlstate() << " " << e.what();
    EXPECT_TRUE(e.connection_lost()) << e.what();
    // The server's own word for it.
    EXPECT_NE(std::string(e.what()).find("terminating connection"), std::string::npos) << e.what();
  }
  terminate_later.join();
  EXPECT_FALSE(conn_->ok());
  try {
    conn_->RunTogether({{one, n}});
    ADD_FAILURE() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_TRUE(e.connection_lost()) << e.what();
  }
}

}  // namespace
}  // namespace tp
