// A buyer's timeline read from PostgreSQL while other sessions write: the
// ingest, firing and re-plan sessions (and other daemons) commit between
// the report's reads.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "harness.h"
#include "pg/connection.h"
#include "store/pg_store_fixture.h"

namespace tp {
namespace {

using testing::At;
using testing::PgStoreTest;

// The report's reads see one moment: a change committed after its first
// read (here, while its read of the touchpoints waits for a lock) does not
// show in the touchpoints beside a buyer and purchases read before it.
TEST_F(PgStoreTest, ABuyersTimelineIsReadInOneSnapshot) {
  auto store = MustOpen();
  Buy(*store, 1, At("2026-12-04T10:00:00Z"));  // b0: one purchase, two steps pending
  auto writer = pg::Connection::Open(db_->url(), "writer");
  auto watcher = pg::Connection::Open(db_->url(), "watcher");  // one, opened before
  writer->Exec("BEGIN");
  writer->Exec("LOCK TABLE touchpoints IN ACCESS EXCLUSIVE MODE");
  auto report = std::async(std::launch::async, [&] { return store->GetBuyer("b0"); });
  // Within the store's lock timeout (5 s), with room for the rest.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (watcher
             ->Exec("SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = "
                    "'touchpoints'::regclass")
             .Int64(0, 0) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the report never waited";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  writer->Exec("UPDATE touchpoints SET state = 3, reason = 'cancelled meanwhile'");
  writer->Exec("COMMIT");
  auto read = report.get();
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_TRUE(read->has_value());
  ASSERT_EQ((*read)->purchases.size(), 1u);
  ASSERT_EQ((*read)->touchpoints.size(), 2u);
  for (const TouchpointRecord& t : (*read)->touchpoints) {
    EXPECT_EQ(t.state, TouchpointState::kPending) << t.reason;
  }
}

}  // namespace
}  // namespace tp
