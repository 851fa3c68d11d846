// SpaceWatch: which store failures are a full disk. Both a full disk (or
// database_max_size) and a file locked by another process fail a call as
// Unavailable; only a failure the store counted as a full one
// (SqliteStore::FullFailures) is a write failed for want of space, and it
// is, whether a hook reported it or the next check finds it.
#include "daemon/space_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>

#include "harness.h"
#include "temp_dir.h"

namespace tp {
namespace {

class SpaceWatchTest : public ::testing::Test {
 protected:
  SpaceWatchTest()
      : clock_(testing::At("2026-11-01T10:00:00Z")),
        metrics_("test"),
        watch_(
            io_, dir_.path() + "/tp.db",
            [] {
              StorageSpace s;  // a roomy 64 MiB disk
              s.fs_size = std::uint64_t{64} << 20;
              s.fs_free = std::uint64_t{48} << 20;
              return StatusOr<StorageSpace>(s);
            },
            [this] { return full_.load(); }, clock_, metrics_,
            [this](bool short_of_space) { short_ = short_of_space; }) {}

  testing::TempDir dir_;
  boost::asio::io_context io_;
  FakeClock clock_;
  DaemonMetrics metrics_;
  std::atomic<std::uint64_t> full_{3};  // failures before the watch began
  bool short_ = false;
  SpaceWatch watch_;
};

TEST_F(SpaceWatchTest, AFailureTheStoreDidNotCountAsFullIsNotAFullDisk) {
  watch_.Check();
  watch_.Check(true);  // an Unavailable call: the file was locked
  EXPECT_FALSE(short_);
  EXPECT_FALSE(watch_.paused());
}

TEST_F(SpaceWatchTest, AFullDiskFailureIsOneWhetherOrNotAHookSaysSo) {
  watch_.Check();
  ++full_;
  watch_.Check(true);  // the failing call's hook
  EXPECT_TRUE(short_);
  EXPECT_NE(watch_.reason().find("a write failed"), std::string::npos) << watch_.reason();
}

TEST_F(SpaceWatchTest, AFullDiskFailureNoHookReportedIsFoundByTheNextCheck) {
  watch_.Check();
  ++full_;         // a delivery's record, say: no hook reports it
  watch_.Check();  // the next second's check
  EXPECT_TRUE(short_);
}

TEST_F(SpaceWatchTest, AnOldFullDiskFailureDoesNotMakeALaterLockOne) {
  ++full_;  // long ago, before a check
  watch_.Check();
  ASSERT_TRUE(short_);
  // Room again, and no write failed for long: back to normal.
  clock_.Advance(std::chrono::minutes(1));
  watch_.Check();
  ASSERT_FALSE(short_);
  watch_.Check(true);  // then a lock
  EXPECT_FALSE(short_);
}

}  // namespace
}  // namespace tp
