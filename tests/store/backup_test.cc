// Backups of a live file (store/backup.cc).
#include "store/store_test.h"

namespace tp {
namespace {

TEST_F(SqliteStoreTest, BackupWritesAConsistentCopyAndNeverOverwrites) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  const std::string copy = dir_.path() + "/copy.db";
  ASSERT_TRUE(SqliteStore::Backup(Path(), copy).ok());  // the store stays open meanwhile
  Status again = SqliteStore::Backup(Path(), copy);
  EXPECT_THAT(again.message(), HasSubstr("exists; remove it or choose another name"));
  EXPECT_THAT(SqliteStore::Backup(dir_.path() + "/none.db", dir_.path() + "/x.db").message(),
              HasSubstr("none.db: No such file or directory"));
  EXPECT_THAT(SqliteStore::Backup(Path(), dir_.path() + "/no/such/dir/x.db").message(),
              HasSubstr("cannot write " + dir_.path() + "/no/such/dir/x.db.partial: No such file"));
  EXPECT_FALSE(std::filesystem::exists(copy + ".partial"));
  EXPECT_EQ(std::filesystem::status(copy).permissions(),
            std::filesystem::status(Path()).permissions());  // 0640, as the daemon made it

  auto restored = SqliteStore::Open(copy, rules_);
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  auto buyer = (*restored)->GetBuyer("b1");
  ASSERT_TRUE(buyer.ok() && buyer->has_value());
  EXPECT_EQ((*buyer)->touchpoints.size(), 6u);
}

}  // namespace
}  // namespace tp
