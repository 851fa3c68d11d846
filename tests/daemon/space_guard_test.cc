#include "daemon/space_guard.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "harness.h"
#include "temp_dir.h"

namespace tp {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

// A 16 MiB disk (so a 2 MiB reserve) whose free space the test sets.
class SpaceGuardTest : public ::testing::Test {
 protected:
  SpaceGuardTest()
      : reserve_(dir_.path() + "/tp.db-reserve"),
        clock_(testing::At("2026-11-01T10:00:00Z")),
        guard_([this] { return Measure(); }, reserve_, clock_) {}

  StatusOr<StorageSpace> Measure() {
    StorageSpace s;
    s.fs_size = 16 * kMiB;
    // The reserve file's bytes are the disk's too.
    s.fs_free = free_ > reserve_.held() ? free_ - reserve_.held() : 0;
    s.free_pages = free_pages_;
    return s;
  }

  testing::TempDir dir_;
  DiskReserve reserve_;
  FakeClock clock_;
  SpaceGuard guard_;
  std::uint64_t free_ = 10 * kMiB;  // before the reserve takes its share
  std::uint64_t free_pages_ = 0;
};

TEST_F(SpaceGuardTest, KeepsAReserveWhileRoomy) {
  EXPECT_FALSE(guard_.Check());
  EXPECT_FALSE(guard_.short_of_space());
  EXPECT_EQ(reserve_.held(), 2 * kMiB);
  EXPECT_EQ(std::filesystem::file_size(reserve_.path()), 2 * kMiB);
}

TEST_F(SpaceGuardTest, GoesShortUnderHalfTheReserveAndGivesItBack) {
  ASSERT_FALSE(guard_.Check());
  free_ = 2 * kMiB + kMiB / 2;  // 0.5 MiB left beside the reserve: under half of it
  EXPECT_TRUE(guard_.Check());
  EXPECT_TRUE(guard_.short_of_space());
  EXPECT_EQ(reserve_.held(), 0u);
  EXPECT_FALSE(std::filesystem::exists(reserve_.path()));
  EXPECT_NE(guard_.report().reason.find("the disk holding the database is full"),
            std::string::npos);
  // Free pages inside the database count as room.
  free_pages_ = 2 * kMiB;
  EXPECT_TRUE(guard_.Check());
  EXPECT_FALSE(guard_.short_of_space());
  EXPECT_EQ(reserve_.held(), 2 * kMiB);
}

// Free pages inside the database, on a disk with no room for the reserve:
// the first write that grows the WAL would fail again, so it stays short.
TEST_F(SpaceGuardTest, FreePagesAloneDoNotEndIt) {
  ASSERT_FALSE(guard_.Check());
  free_ = 2 * kMiB + kMiB / 2;
  ASSERT_TRUE(guard_.Check());
  free_ = kMiB;
  free_pages_ = 8 * kMiB;
  EXPECT_FALSE(guard_.Check());
  EXPECT_TRUE(guard_.short_of_space());
  EXPECT_EQ(reserve_.held(), 0u);
  free_ = 2 * kMiB;
  EXPECT_TRUE(guard_.Check());
  EXPECT_FALSE(guard_.short_of_space());
  EXPECT_EQ(reserve_.held(), 2 * kMiB);
}

TEST_F(SpaceGuardTest, AFailedWriteMakesItShortAndHoldsItShortForFiveSeconds) {
  ASSERT_FALSE(guard_.Check());
  EXPECT_TRUE(guard_.Check(/*write_failed=*/true));
  EXPECT_TRUE(guard_.short_of_space());
  // Plenty of room by the numbers, but a write just failed: not yet.
  clock_.Advance(std::chrono::seconds(4));
  EXPECT_FALSE(guard_.Check());
  EXPECT_TRUE(guard_.short_of_space());
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_TRUE(guard_.Check());
  EXPECT_FALSE(guard_.short_of_space());
}

TEST_F(SpaceGuardTest, ComesBackOnlyWithTwiceTheReserve) {
  ASSERT_FALSE(guard_.Check());
  free_ = 2 * kMiB + kMiB / 4;
  ASSERT_TRUE(guard_.Check());
  free_ = 3 * kMiB;  // the reserve back would leave 1 MiB: too little
  EXPECT_FALSE(guard_.Check());
  EXPECT_TRUE(guard_.short_of_space());
  free_ = 4 * kMiB;
  EXPECT_TRUE(guard_.Check());
  EXPECT_FALSE(guard_.short_of_space());
}

TEST_F(SpaceGuardTest, AtTheCapTheReasonNamesIt) {
  StorageSpace capped;
  capped.fs_size = 100 * kMiB;
  capped.fs_free = 90 * kMiB;
  capped.cap = 8 * kMiB;
  capped.cap_left = 0;
  SpaceGuard guard([&] { return StatusOr<StorageSpace>(capped); }, reserve_, clock_);
  EXPECT_TRUE(guard.Check());
  EXPECT_TRUE(guard.short_of_space());
  EXPECT_NE(guard.report().reason.find("database_max_size (8.0 MiB)"), std::string::npos);
  EXPECT_EQ(capped.Reserve(), kMiB);
}

}  // namespace
}  // namespace tp
