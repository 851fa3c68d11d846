// The libpq layer's tests' fixture: a database of the test's own on the
// shared server and a connection to it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "pg/connection.h"
#include "pg_server.h"

namespace tp::testing {

// Waits until the session `pid` waits for a lock, for at most 10 s (its
// lock_timeout is 5 s); whether it did.
inline bool AwaitLockWait(const std::string& url, int pid) {
  auto watcher = pg::Connection::Open(url, "watcher");
  const std::string sql =
      "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = " + std::to_string(pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (watcher->Exec(sql).Int64(0, 0) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = PgServer::Shared().NewDatabase();
    conn_ = pg::Connection::Open(db_->url(), "connection-test");
  }
  std::unique_ptr<PgServer::Database> db_;
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace tp::testing
