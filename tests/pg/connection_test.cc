// The libpq layer (lib/pg) against a real server: text parameters and
// results, NULLs, arrays, COPY, transactions, and errors as a Status.
#include "pg/connection.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "connection_fixture.h"
#include "pg/url.h"
#include "pg_server.h"

namespace tp {
namespace {

using testing::PgConnectionTest;
using testing::PgServer;

TEST_F(PgConnectionTest, ValuesGoAndComeBackAsTheyWere) {
  conn_->Exec("CREATE TABLE t (s TEXT, i BIGINT, d DOUBLE PRECISION, b BOOLEAN)");
  const pg::Statement insert("INSERT INTO t VALUES ($1, $2, $3, $4)");
  const std::string odd = "tab\there, quote ' and \" and \\ and 中文";
  conn_->Run(insert, pg::Params().Add(odd).Add(std::int64_t{-9007199254740993}).Add(0.1).Add(true));
  conn_->Run(insert, pg::Params().AddNull().AddNull().Add(1e300).Add(false));
  conn_->Run(
      insert,
      pg::Params().AddTextOrNull("").Add(std::optional<std::int64_t>()).Add(-0.0).Add(false));
  pg::Result r = conn_->Exec("SELECT s, i, d, b FROM t ORDER BY d");
  ASSERT_EQ(r.rows(), 3);
  EXPECT_EQ(r.Double(0, 2), 0.0);
  EXPECT_TRUE(r.IsNull(0, 0));
  EXPECT_FALSE(r.OptionalInt64(0, 1).has_value());
  EXPECT_EQ(r.Text(1, 0), odd);
  EXPECT_EQ(r.Int64(1, 1), -9007199254740993);
  EXPECT_EQ(r.Double(1, 2), 0.1);  // exactly: shortest round-trip forms both ways
  EXPECT_TRUE(r.Bool(1, 3));
  EXPECT_EQ(r.Double(2, 2), 1e300);
  EXPECT_FALSE(r.Bool(2, 3));
}

TEST_F(PgConnectionTest, AStatementPlannedAtEachRunIsNeverPrepared) {
  conn_->Exec("CREATE TABLE q (id BIGINT PRIMARY KEY, v TEXT)");
  const pg::Statement insert("INSERT INTO q VALUES ($1, $2)");
  const pg::Statement take("DELETE FROM q WHERE id = ANY($1::bigint[]) RETURNING v",
                           pg::Statement::Plan::kEachRun);
  const auto prepared = [&] {
    return conn_->Exec("SELECT count(*) FROM pg_prepared_statements").Int64(0, 0);
  };
  // Past the five runs after which the server may keep a generic plan.
  for (std::int64_t i = 0; i < 8; ++i) {
    conn_->Run(insert, pg::Params().Add(i).Add("v" + std::to_string(i)));
    pg::Result r = conn_->Run(take, pg::Params().AddArray(std::vector<std::int64_t>{i, i + 100}));
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.Text(0, 0), "v" + std::to_string(i));
  }
  EXPECT_EQ(prepared(), 1);  // the insert only
}

TEST_F(PgConnectionTest, ArraysCarryAnyTextAndTheirCount) {
  const std::vector<std::string> texts = {"a,b", "{x}", "q\"uote", "back\\slash", "", "NULL"};
  pg::Result r =
      conn_->Exec("SELECT s FROM unnest($1::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n",
                  pg::Params().AddArray(texts));
  ASSERT_EQ(r.rows(), static_cast<int>(texts.size()));
  for (int i = 0; i < r.rows(); ++i) {
    EXPECT_FALSE(r.IsNull(i, 0));
    EXPECT_EQ(r.Text(i, 0), texts[static_cast<std::size_t>(i)]);
  }
  r = conn_->Exec("SELECT cardinality($1::bigint[])",
                  pg::Params().AddArray(std::vector<std::int64_t>{}));
  EXPECT_EQ(r.Int64(0, 0), 0);
}

// A text with a NUL is refused before it is sent: libpq would send it up
// to the NUL, and the statement would run on a shorter text (another
// buyer's id, an array literal cut short).
TEST_F(PgConnectionTest, ATextWithANulIsRefusedNotCutShort) {
  const std::string with_nul("lin\0x", 5);
  for (const auto& add : std::vector<std::function<void(pg::Params&)>>{
           [&](pg::Params& p) { p.Add(with_nul); },
           [&](pg::Params& p) {
             p.AddArray(std::vector<std::string>{"a", with_nul});
           }}) {
    pg::Params params;
    try {
      add(params);
      ADD_FAILURE() << "taken";
    } catch (const pg::Error& e) {
      EXPECT_FALSE(e.transient()) << e.what();
      EXPECT_EQ(e.sqlstate(), "22021");
    }
  }
}

TEST_F(PgConnectionTest, CopyInWritesEscapedRows) {
  conn_->Exec("CREATE TABLE t (s TEXT, n BIGINT)");
  std::string data;
  for (const std::string s : {"plain", "tab\tand\nnewline", "back\\slash"}) {
    pg::CopyText(data, s);
    data += "\t7\n";
  }
  conn_->CopyIn("COPY t (s, n) FROM STDIN", data);
  pg::Result r = conn_->Exec("SELECT s FROM t ORDER BY s");
  ASSERT_EQ(r.rows(), 3);
  EXPECT_EQ(r.Text(0, 0), "back\\slash");
  EXPECT_EQ(r.Text(2, 0), "tab\tand\nnewline");
}

// A copy the server refuses is an error of its own, and the connection
// goes on: every result of the copy was read (before, the last was left
// unread, and with an answer limit the next statement failed as "another
// command is already in progress", a 500 on a connection never replaced).
TEST_F(PgConnectionTest, ACopyTheServerRefusesLeavesTheConnectionReady) {
  conn_->Exec("CREATE TABLE t (s TEXT, n BIGINT)");
  conn_->set_answer_limit(std::chrono::seconds(10));
  try {
    conn_->CopyIn("COPY t (s, n) FROM STDIN", "a\tnot a number\n");
    ADD_FAILURE() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "22P02") << e.what();
    EXPECT_FALSE(e.connection_lost());
  }
  EXPECT_TRUE(conn_->ok());
  EXPECT_EQ(conn_->Exec("SELECT 1").Int64(0, 0), 1);
  conn_->CopyIn("COPY t (s, n) FROM STDIN", "b\t2\n");
  EXPECT_EQ(conn_->Exec("SELECT n FROM t").Int64(0, 0), 2);
}

TEST_F(PgConnectionTest, ATransactionNotCommittedIsRolledBack) {
  conn_->Exec("CREATE TABLE t (n BIGINT)");
  {
    pg::Transaction txn(*conn_);
    conn_->Exec("INSERT INTO t VALUES (1)");
  }
  {
    pg::Transaction txn(*conn_);
    conn_->Exec("INSERT INTO t VALUES (2)");
    txn.Commit();
  }
  EXPECT_EQ(conn_->Exec("SELECT string_agg(n::text, ',') FROM t").Text(0, 0), "2");
}

// A snapshot transaction's statements all see the database as its first
// did, whatever commits meanwhile, and it writes nothing.
TEST_F(PgConnectionTest, ASnapshotTransactionSeesOneMomentAndWritesNothing) {
  conn_->Exec("CREATE TABLE t (n BIGINT)");
  conn_->Exec("INSERT INTO t VALUES (1)");
  auto other = pg::Connection::Open(db_->url(), "connection-test-other");
  EXPECT_FALSE(conn_->in_transaction());
  {
    pg::Transaction snapshot(*conn_, pg::Transaction::Mode::kSnapshot);
    EXPECT_TRUE(conn_->in_transaction());
    EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 1);
    other->Exec("INSERT INTO t VALUES (2)");  // committed meanwhile
    EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 1);
    EXPECT_THROW(conn_->Exec("INSERT INTO t VALUES (3)"), pg::Error);
  }
  EXPECT_FALSE(conn_->in_transaction());
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM t").Int64(0, 0), 2);
}

TEST_F(PgConnectionTest, ErrorsNameTheStatementAndSayWhetherToTryAgain) {
  try {
    conn_->Exec("SELECT * FROM no_such_table");
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_FALSE(e.transient());
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();  // one line
    Status s = pg::ToStatus("read", e);
    EXPECT_FALSE(s.unavailable());
  }
  // The server ends the session (an administrator, a failover): transient.
  auto admin = pg::Connection::Open(db_->url(), "admin");
  admin->Exec("SELECT pg_terminate_backend(" + std::to_string(conn_->backend_pid()) + ", 5000)");
  // Seen before a statement is sent.
  EXPECT_FALSE(conn_->ok());
  try {
    conn_->Exec("SELECT 1");
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_TRUE(e.transient()) << e.sqlstate() << " " << e.what();
    EXPECT_TRUE(pg::ToStatus("read", e).unavailable());
  }
}

// A statement cancelled from another thread fails with 57014, and the
// connection goes on; a cancel after its connection went does no harm.
TEST_F(PgConnectionTest, ACancellerStopsTheRunningStatementFromAnotherThread) {
  const pg::Canceller cancel(*conn_);
  const int pid = conn_->backend_pid();
  std::thread canceller([&] {
    auto watcher = pg::Connection::Open(db_->url(), "watcher");
    const std::string sleeping =
        "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid) +
        " AND query LIKE 'SELECT pg_sleep%'";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (watcher->Exec(sleeping).Int64(0, 0) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(cancel.Cancel());
  });
  const auto started = std::chrono::steady_clock::now();
  try {
    conn_->Exec("SELECT pg_sleep(60)");
    ADD_FAILURE() << "not cancelled";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "57014") << e.what();
    EXPECT_FALSE(e.connection_lost());
    // The server too slow for now, as after a statement timeout: try
    // later (an API answers 503 with Retry-After, not 500).
    EXPECT_TRUE(e.transient());
    EXPECT_TRUE(pg::ToStatus("read", e).unavailable());
  }
  canceller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_TRUE(conn_->ok());
  EXPECT_EQ(conn_->Exec("SELECT 1").Int64(0, 0), 1);
  conn_.reset();
  cancel.Cancel();  // its connection gone: sent or not, harmless
}

// A statement timeout set on the database (as managed servers often do)
// is not the daemon's: its sessions run without one unless they set their
// own, and a timeout a session sets ends a statement as the server being
// too slow for now.
TEST_F(PgConnectionTest, TheDatabasesStatementTimeoutIsNotTheSessions) {
  const std::string alter =
      "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = ''50ms''', "
      "current_database()); END$$";
  conn_->Exec(alter);
  auto fresh = pg::Connection::Open(db_->url(), "test");
  EXPECT_EQ(fresh->Exec("SHOW statement_timeout").Text(0, 0), "0");
  fresh->Exec("SELECT pg_sleep(0.2)");
  auto limited = pg::Connection::Open(db_->url(), "test", "-c statement_timeout=50");
  try {
    limited->Exec("SELECT pg_sleep(0.2)");
    ADD_FAILURE() << "no timeout";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "57014") << e.what();
    EXPECT_TRUE(pg::ToStatus("read", e).unavailable());
  }
}

TEST_F(PgConnectionTest, NoServerIsUnavailableAndThePasswordIsNotShown) {
  const std::string url = "postgresql://touchpoint:s3cret@127.0.0.1:9/x";
  Status s = pg::Guard("open", [&] {
    pg::Connection::Open(url);
    return Status::Ok();
  });
  EXPECT_TRUE(s.unavailable()) << s.message();
  EXPECT_EQ(s.message().find("s3cret"), std::string::npos) << s.message();
  // libpq's two lines ("Connection refused", then a tab and "Is the server
  // running ...?") on one: a log line, a JSON error.
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Connection refused. Is the server running on that host"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(pg::Redacted(url), "postgresql://touchpoint:***@127.0.0.1:9/x");
  EXPECT_EQ(pg::Redacted("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(pg::Redacted("postgresql://u:s3cr/et@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(pg::Redacted("postgresql://u@h/db?sslmode=require&password=s3cret&x=1"),
            "postgresql://u@h/db?sslmode=require&password=***&x=1");
  // libpq reads a key with escapes as without, and the client key's
  // password is one too.
  EXPECT_EQ(pg::Redacted("postgresql://u:p@h/db?sslpassword=s3cret&Pass%77ord=s3cret&%"),
            "postgresql://u:***@h/db?sslpassword=***&Pass%77ord=***&%");
  EXPECT_EQ(pg::Redacted("postgresql://u@h/db?application_name=password"),
            "postgresql://u@h/db?application_name=password");
  EXPECT_TRUE(pg::IsUrl("postgres://h/db"));
  EXPECT_FALSE(pg::IsUrl("/var/lib/touchpoint/touchpoint.db"));
}

// A client's mistake the server answers with 08P01 (protocol_violation)
// leaves the session as it was: neither lost nor worth trying again.
TEST_F(PgConnectionTest, AStatementGivenTooFewParametersIsNotALostConnection) {
  const pg::Statement one("SELECT $1::bigint");
  try {
    conn_->Run(one, pg::Params());
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "08P01") << e.what();
    EXPECT_FALSE(e.connection_lost()) << e.what();
    EXPECT_FALSE(e.transient()) << e.what();
  }
  EXPECT_TRUE(conn_->ok());
  EXPECT_EQ(conn_->Run(one, pg::Params().Add(std::int64_t{7})).Int64(0, 0), 7);
}

// A write a read-only database refuses may succeed later (503, not 500);
// the session is lost only when it is on a standby, where a new one may
// find the primary.
TEST_F(PgConnectionTest, AWriteRefusedAsReadOnlyIsTriedAgain) {
  conn_->Exec("CREATE TABLE t (n BIGINT)");
  conn_->Exec("SET default_transaction_read_only = on");
  try {
    conn_->Exec("INSERT INTO t VALUES (1)");
    FAIL() << "no error";
  } catch (const pg::Error& e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
    EXPECT_TRUE(e.transient()) << e.what();
    EXPECT_FALSE(e.connection_lost()) << e.what();  // a primary: in_hot_standby is off
  }
  EXPECT_TRUE(conn_->ok());
}

// A daemon cut from the network: the server ends its session within 8 s,
// freeing its claims (docs/scaling.md, "Failover"; e2e/postgres_cut_test.cc
// cuts one for real).
TEST_F(PgConnectionTest, TheServerProbesTheConnectionToo) {
  EXPECT_EQ(conn_->Exec("SHOW tcp_keepalives_idle").Text(0, 0), "2");
  EXPECT_EQ(conn_->Exec("SHOW tcp_keepalives_interval").Text(0, 0), "2");
  EXPECT_EQ(conn_->Exec("SHOW tcp_keepalives_count").Text(0, 0), "3");
  EXPECT_EQ(conn_->Exec("SHOW tcp_user_timeout").Text(0, 0), "8000");
  EXPECT_EQ(conn_->Exec("SHOW idle_in_transaction_session_timeout").Text(0, 0), "10s");
}

// A server process that is stopped (SIGSTOP here; a frozen VM, a stalled
// disk) keeps its connection up, and libpq would wait for its answer for
// as long: with an answer limit, each way of sending a statement gives the
// connection up past it, as lost. Without one, the wait is as long as it
// takes (here: until the process goes on).
TEST_F(PgConnectionTest, AStoppedServerIsGivenUpPastTheAnswerLimit) {
  const pg::Statement prepared("SELECT 2");
  const std::vector<std::pair<std::string, std::function<void(pg::Connection&)>>> ways = {
      {"exec", [](pg::Connection& c) { c.Exec("SELECT 1"); }},
      {"exec with parameters", [](pg::Connection& c) { c.Exec("SELECT $1", pg::Params().Add(1)); }},
      {"prepared", [&](pg::Connection& c) { c.Run(prepared); }},
      {"together", [&](pg::Connection& c) {
         c.RunTogether({{prepared, {}}, {prepared, {}}});
       }}};
  for (const auto& [name, send] : ways) {
    auto c = pg::Connection::Open(db_->url(), "answer-limit-test");
    c->set_answer_limit(std::chrono::milliseconds(300));
    const pid_t pid = c->backend_pid();
    ASSERT_EQ(::kill(pid, SIGSTOP), 0) << name;
    struct Resume {
      pid_t pid;
      ~Resume() { ::kill(pid, SIGCONT); }
    } resume{pid};
    const auto start = std::chrono::steady_clock::now();
    try {
      send(*c);
      ADD_FAILURE() << name << ": answered";
    } catch (const pg::Error& e) {
      EXPECT_TRUE(e.connection_lost()) << name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("did not answer within 300 ms"), std::string::npos)
          << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << name;
    EXPECT_FALSE(c->ok()) << name;
    EXPECT_THROW(c->Exec("SELECT 1"), pg::Error) << name;
  }
  // No limit: the answer comes once the process goes on.
  auto c = pg::Connection::Open(db_->url(), "answer-limit-test");
  const pid_t pid = c->backend_pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  std::thread later([pid] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ::kill(pid, SIGCONT);
  });
  EXPECT_EQ(c->Exec("SELECT 3").Int64(0, 0), 3);
  later.join();
}

// What the URL sets wins, setting by setting: its `options` come after the
// daemon's server settings instead of replacing them (a URL that sets only
// the search path kept no lock timeout, no JIT off, no keepalives on the
// server); its client settings replace the daemon's. The session's name
// keeps the daemon's, which the daemons find each other by.
TEST_F(PgConnectionTest, TheUrlsSettingsComeAfterTheDaemonsOwn) {
  auto conn = pg::Connection::Open(db_->url() +
                                       "?application_name=eu-1&connect_timeout=7&options=-c%20"
                                       "search_path%3Delsewhere%20-c%20lock_timeout%3D7s",
                                   "touchpointd-fire", "-c enable_seqscan=off");
  EXPECT_EQ(conn->Exec("SHOW search_path").Text(0, 0), "elsewhere");
  EXPECT_EQ(conn->Exec("SHOW lock_timeout").Text(0, 0), "7s");
  EXPECT_EQ(conn->Exec("SHOW jit").Text(0, 0), "off");
  EXPECT_EQ(conn->Exec("SHOW enable_seqscan").Text(0, 0), "off");
  EXPECT_EQ(conn->Exec("SHOW tcp_keepalives_idle").Text(0, 0), "2");
  EXPECT_EQ(conn->Exec("SHOW idle_in_transaction_session_timeout").Text(0, 0), "10s");
  EXPECT_EQ(conn->Exec("SHOW application_name").Text(0, 0), "touchpointd-fire (eu-1)");
  // A URL's server setting also wins over the session's own.
  auto scans = pg::Connection::Open(db_->url() + "?options=-c%20enable_seqscan%3Don",
                                    "touchpointd-fire", "-c enable_seqscan=off");
  EXPECT_EQ(scans->Exec("SHOW enable_seqscan").Text(0, 0), "on");
  EXPECT_EQ(scans->Exec("SHOW application_name").Text(0, 0), "touchpointd-fire");
}

// A session's own settings (the firing session's reads by index only,
// store/pg_store.cc) come after the defaults, which stay.
TEST_F(PgConnectionTest, ASessionMayAskForMoreSettings) {
  auto firing = pg::Connection::Open(db_->url(), "settings-test",
                                     "-c enable_seqscan=off -c enable_bitmapscan=off");
  EXPECT_EQ(firing->Exec("SHOW enable_seqscan").Text(0, 0), "off");
  EXPECT_EQ(firing->Exec("SHOW enable_bitmapscan").Text(0, 0), "off");
  EXPECT_EQ(firing->Exec("SHOW lock_timeout").Text(0, 0), "5s");
  EXPECT_EQ(firing->Exec("SHOW application_name").Text(0, 0), "settings-test");
  EXPECT_EQ(conn_->Exec("SHOW enable_seqscan").Text(0, 0), "on");
}

TEST_F(PgConnectionTest, NotificationsArriveOnTheListeningConnection) {
  conn_->Exec("LISTEN touchpoint_due");
  auto other = pg::Connection::Open(db_->url(), "notifier");
  other->Exec("NOTIFY touchpoint_due");
  std::vector<std::string> got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    got = conn_->TakeNotifications();
    if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "touchpoint_due");
}

}  // namespace
}  // namespace tp
