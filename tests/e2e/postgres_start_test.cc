// A daemon starting on PostgreSQL while another migrates the schema, end
// to end, under systemd's notify protocol: the start waits, and keeps
// systemd's start timeout from running out meanwhile.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "daemon_process.h"
#include "notify_socket.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "postgres_fixture.h"
#include "test_config.h"

namespace tp {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::NotifySocket;
using testing::PgServer;

// A migration can take minutes (an index built on a large table), and
// daemons starting meanwhile wait for it: all within systemd's start
// timeout (90 s by default), which then killed them and restarted them
// into the same wait, or killed the migrating daemon and so began its
// migration again. The start now extends the timeout every 2 s until
// READY=1.
TEST_F(PostgresDaemonTest, AStartWaitingForAMigrationExtendsSystemdsStartTimeout) {
  auto db = PgServer::Shared().NewDatabase();
  auto holder = pg::Connection::Open(db->url(), "test");
  holder->Exec("BEGIN");
  holder->Exec("SELECT pg_advisory_xact_lock(7305861230001)");  // another daemon migrating
  NotifySocket systemd(Path("notify.sock"));
  testing::WriteFile(Path("touchpoint.yaml"), testing::TestConfig().Step("1d", "later").Yaml());
  DaemonProcess d(Path("touchpoint.yaml"), db->url(), Path("daemon.log"));
  d.SetEnv("NOTIFY_SOCKET", Path("notify.sock"));
  std::atomic<bool> started{false};
  std::thread start([&] { started = static_cast<bool>(d.Start()); });

  std::string extended;
  for (int i = 0; i < 4 && extended.empty(); ++i) {
    const std::string m = systemd.Next(std::chrono::seconds(5));
    if (m.starts_with("EXTEND_TIMEOUT_USEC=")) extended = m;
  }
  EXPECT_THAT(extended, HasSubstr("EXTEND_TIMEOUT_USEC=15000000\n"));
  EXPECT_THAT(extended, HasSubstr("STATUS=starting for "));
  EXPECT_THAT(extended, HasSubstr("opening the database"));
  EXPECT_FALSE(started);  // still waiting

  holder->Exec("COMMIT");
  start.join();
  ASSERT_TRUE(started) << d.log();
  EXPECT_THAT(systemd.NextState(), HasSubstr("READY=1"));
  // Ready: no more extensions.
  const std::string after = systemd.Next(std::chrono::milliseconds(2500));
  EXPECT_FALSE(after.starts_with("EXTEND_TIMEOUT_USEC=")) << after;
}

}  // namespace
}  // namespace tp
