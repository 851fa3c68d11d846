// End-to-end: touchpointd when its database has no room, on a real 2 MiB
// filesystem (a tmpfs in a mount namespace of its own, where the kernel
// allows one) and at database_max_size (everywhere). It must answer 503
// with Retry-After (never 500), say so on /healthz and /metrics, keep
// serving leases and acks, and come back by itself once there is room.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/clock.h"
#include "daemon_process.h"
#include "harness.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;

testing::TestConfig DiskFullConfig() {
  return testing::TestConfig().Tier("{name: novice}").Step("1s", "soon").Step("1d", "later");
}

json Batch(int batch, int size) {
  const std::string now = FormatRfc3339(SystemClock().Now(), UtcZone());
  json items = json::array();
  for (int i = 0; i < size; ++i) {
    const std::string id = std::to_string(batch) + "-" + std::to_string(i);
    items.push_back({{"order_id", "o" + id},
                     {"buyer_id", "b" + id},
                     {"product", "daily"},
                     {"quantity", 1},
                     {"amount", 10},
                     {"purchased_at", now}});
  }
  return items;
}

class DiskFullTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::pair<int, HttpResult> Post(const std::string& target, const json& body) {
    auto r = daemon_->http().Request("POST", target, body.dump());
    EXPECT_TRUE(r.ok()) << r.status().message();
    return {r.ok() ? r->status : 0, r.ok() ? *r : HttpResult{}};
  }

  // Ingests batches until the daemon answers 503; that answer.
  HttpResult FillUntilRefused() {
    for (int b = 0; b < 2000; ++b) {
      auto [status, r] = Post("/v1/purchases", Batch(b, 100));
      if (status == 200) continue;
      EXPECT_EQ(status, 503) << r.body;
      return r;
    }
    ADD_FAILURE() << "the database never filled";
    return {};
  }

  json Health() { return daemon_->Call("GET", "/healthz").second; }

  // Polls /healthz until its storage state is `state` (20 s at most).
  bool WaitForStorage(const std::string& state) {
    for (int i = 0; i < 2000; ++i) {
      if (Health()["storage"]["state"] == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Leases and acks whatever is visible; whether every answer was 200 or
  // 503 (never a 500).
  void LeaseAndAckNever500() {
    for (int i = 0; i < 5; ++i) {
      auto lease = daemon_->http().Request("POST", "/v1/queues/outbox/lease",
                                           R"({"max": 100, "visibility_s": 30})");
      ASSERT_TRUE(lease.ok());
      ASSERT_TRUE(lease->status == 200 || lease->status == 503) << lease->body;
      if (lease->status != 200) continue;
      json receipts = json::array();
      const json leased = json::parse(lease->body);
      for (const auto& m : leased["messages"]) receipts.push_back(m["receipt"]);
      auto ack = daemon_->http().Request("POST", "/v1/queues/outbox/ack",
                                         json{{"receipts", receipts}}.dump());
      ASSERT_TRUE(ack.ok());
      EXPECT_TRUE(ack->status == 200 || ack->status == 503) << ack->body;
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

// Another process holding the database's write lock past the busy
// timeout (an operator's sqlite3 shell in a transaction) also fails a
// write as Unavailable: that purchase is a 503 naming the lock, but it is
// not a full disk. The daemon does not pause, /healthz does not say
// "short", and once the lock goes the next purchase is taken at once.
TEST_F(DiskFullTest, ALockHeldByAnotherProcessIsNotAFullDisk) {
  testing::WriteFile(Path("touchpoint.yaml"), DiskFullConfig().Yaml());
  daemon_ =
      std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
  ASSERT_TRUE(daemon_->Start());
  ASSERT_EQ(Post("/v1/purchases", Batch(1, 1)).first, 200);
  sqlite3* shell = nullptr;
  ASSERT_EQ(sqlite3_open_v2(Path("tp.db").c_str(), &shell, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  struct Close {
    sqlite3* db;
    ~Close() { sqlite3_close(db); }
  } close{shell};
  ASSERT_EQ(sqlite3_exec(shell, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto [status, locked] = Post("/v1/purchases", Batch(2, 1));  // waits the busy timeout, 5 s
  EXPECT_EQ(status, 503) << locked.body;
  EXPECT_THAT(locked.body, HasSubstr("database is locked"));
  ASSERT_EQ(sqlite3_exec(shell, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);

  const json health = Health();
  EXPECT_EQ(health["storage"]["state"], "ok") << health;
  auto metrics = daemon_->http().Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(testing::Sample(metrics->body, "touchpoint_storage_short"), 0);
  auto [again, taken] = Post("/v1/purchases", Batch(2, 1));
  EXPECT_EQ(again, 200) << taken.body;
  EXPECT_THAT(daemon_->log(), Not(HasSubstr("refusing purchases (503) and pausing firing")));
}

TEST_F(DiskFullTest, AtDatabaseMaxSizeItRefusesWithRetryAfterAndRecoversWhenRaised) {
  testing::WriteFile(Path("touchpoint.yaml"),
                     DiskFullConfig().Top("database_max_size: 1MiB").Yaml());
  daemon_ =
      std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
  ASSERT_TRUE(daemon_->Start());
  const HttpResult refused = FillUntilRefused();
  EXPECT_THAT(refused.body, HasSubstr("try again later"));
  ASSERT_TRUE(WaitForStorage("short"));
  json health = Health();
  EXPECT_EQ(health["status"], "degraded");
  EXPECT_THAT(health["storage"]["reason"].get<std::string>(), HasSubstr("database_max_size"));
  // Refused at once while short, before any write is tried.
  auto again = daemon_->http().Request("POST", "/v1/purchases", Batch(9999, 1).dump());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 503);
  auto metrics = daemon_->http().Request("GET", "/metrics");
  EXPECT_EQ(testing::Sample(metrics->body, "touchpoint_storage_short"), 1);
  EXPECT_EQ(testing::Sample(metrics->body, R"(touchpoint_ingest_requests_total{outcome="error"})"),
            0);
  LeaseAndAckNever500();
  EXPECT_THAT(daemon_->log(), HasSubstr("refusing purchases (503) and pausing firing"));

  // The operator raises the cap: the daemon takes purchases again by itself.
  testing::WriteFile(Path("touchpoint.yaml"),
                     DiskFullConfig().Top("database_max_size: 64MiB").Yaml());
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(WaitForStorage("ok")) << daemon_->log();
  EXPECT_EQ(Health()["status"], "ok");
  auto [status, accepted] = Post("/v1/purchases", Batch(10'000, 10));
  EXPECT_EQ(status, 200) << accepted.body;
  EXPECT_THAT(daemon_->log(), HasSubstr("taking purchases and firing again"));
}

// The daemon's own mount namespace with a 2 MiB tmpfs at `dir`, or false
// if this kernel or sandbox allows none.
bool CanMountTmpfs() {
  return std::system(
             "unshare -Urm sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt' "
             ">/dev/null 2>&1") == 0;
}

class TmpfsTest : public DiskFullTest {
 protected:
  void SetUp() override {
    if (!CanMountTmpfs()) GTEST_SKIP() << "no user and mount namespaces here (unshare -Urm)";
    std::filesystem::create_directories(Path("disk"));
    testing::WriteFile(Path("touchpoint.yaml"), DiskFullConfig().Yaml());
  }

  // A daemon whose database is on a fresh 2 MiB tmpfs mounted at disk/;
  // `before` runs in its shell first (with the disk mounted).
  DaemonProcess& StartOnTmpfs(const std::string& before = ":") {
    daemon_ = std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("disk/tp.db"),
                                              Path("daemon.log"));
    daemon_->SetWrapper({"unshare", "-Urm", "sh", "-c",
                         "mount -t tmpfs -o size=2m tmpfs \"$0\" && " + before + " && exec \"$@\"",
                         Path("disk")});
    return *daemon_;
  }

  // The daemon's view of disk/ (its mount namespace's).
  std::string Disk(const std::string& name) const {
    return "/proc/" + std::to_string(daemon_->pid()) + "/root" + Path("disk/" + name);
  }

  // Writes zeros to disk/filler until the disk refuses more.
  void FillTheDisk() {
    const int fd = ::open(Disk("filler").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ASSERT_GE(fd, 0) << Disk("filler") << ": " << std::strerror(errno);
    const std::string block(4096, '\0');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    ::close(fd);
  }
};

TEST_F(TmpfsTest, AFullDiskIs503UntilSpaceReturnsThenItRecoversByItself) {
  ASSERT_TRUE(StartOnTmpfs().Start());
  ASSERT_TRUE(std::filesystem::exists(Disk("tp.db-reserve")));
  // Purchases while there is room, firing into the queue meanwhile.
  for (int b = 0; b < 5; ++b) ASSERT_EQ(Post("/v1/purchases", Batch(b, 50)).first, 200);
  FillTheDisk();
  // Noticed within a second, before any write fails; the reserve goes back.
  ASSERT_TRUE(WaitForStorage("short")) << daemon_->log();
  EXPECT_FALSE(std::filesystem::exists(Disk("tp.db-reserve")));
  auto [status, refused] = Post("/v1/purchases", Batch(100, 10));
  EXPECT_EQ(status, 503) << refused.body;
  LeaseAndAckNever500();
  EXPECT_EQ(Health()["status"], "degraded");

  // Space returns: back to normal with no one touching the daemon.
  ASSERT_EQ(::unlink(Disk("filler").c_str()), 0);
  ASSERT_TRUE(WaitForStorage("ok")) << daemon_->log();
  EXPECT_TRUE(std::filesystem::exists(Disk("tp.db-reserve")));
  EXPECT_EQ(Post("/v1/purchases", Batch(101, 10)).first, 200);
  EXPECT_EQ(Health()["status"], "ok");
}

TEST_F(TmpfsTest, FillingTheDiskThroughTheApiNeverAnswers500) {
  ASSERT_TRUE(StartOnTmpfs().Start());
  const HttpResult refused = FillUntilRefused();
  EXPECT_THAT(refused.body, HasSubstr("try again later"));
  ASSERT_TRUE(WaitForStorage("short"));
  LeaseAndAckNever500();
  EXPECT_EQ(daemon_->Call("GET", "/healthz").first, 200);
}

TEST_F(TmpfsTest, StartingOnAFullDiskSaysSoInOneLine) {
  DaemonProcess& d = StartOnTmpfs("dd if=/dev/zero of=\"$0/filler\" bs=64k >/dev/null 2>&1; true");
  EXPECT_FALSE(d.Start());
  EXPECT_EQ(d.Wait(), 1);
  const std::string log = d.log();
  EXPECT_THAT(log, HasSubstr("not starting: no room to open the database"));
  EXPECT_THAT(log, HasSubstr("free some space, then start touchpointd again"));
  // One line: the reason and what to do, nothing else after the start.
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

}  // namespace
}  // namespace tp
