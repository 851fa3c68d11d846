// Test support: a real PostgreSQL server (tests/pg/cluster.sh) and a fresh
// database on it per test. Under ctest the suite shares one server, which
// the fixture "pg" starts (tests/CMakeLists.txt) with its URL in
// TP_PG_CLUSTER_DIR/url; a test binary run by hand, or a test that stops
// and starts its server, gets one of its own in a temporary directory,
// stopped when it goes.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "pg/connection.h"
#include "temp_dir.h"

namespace tp::testing {

class PgServer {
 public:
  // A server of this test's own, started now.
  // (The temporary directory itself is the cluster's: as root, the user
  // "nobody" runs the server and must reach it.)
  PgServer() : owned_(std::make_unique<TempDir>()) {
    dir_ = owned_->path();
    Start();
  }
  // The same, with the server's settings (`-c NAME=VALUE ...`) in place of
  // the suite's (tests/pg/cluster.sh, TP_PG_SETTINGS), kept across a
  // restart.
  struct Settings {
    std::string text;
  };
  explicit PgServer(Settings settings)
      : owned_(std::make_unique<TempDir>()), settings_(std::move(settings.text)) {
    dir_ = owned_->path();
    Start();
  }
  // A hot standby of `primary` (a server of one's own), streaming from it;
  // Stop() and Start() keep it one.
  struct StandbyOf {
    const PgServer& primary;
  };
  explicit PgServer(StandbyOf standby) : owned_(std::make_unique<TempDir>()) {
    dir_ = owned_->path();
    Cluster("standby", standby.primary.url());
    std::ifstream in(dir_ + "/url");
    std::getline(in, url_);
  }
  ~PgServer() {
    if (owned_) Stop();
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // The suite's server: ctest's if it answers, else one this process
  // starts on first use.
  static PgServer& Shared() {
    static PgServer* shared = [] {
      const std::string dir = TP_PG_CLUSTER_DIR;
      std::ifstream in(dir + "/url");
      std::string url;
      if (std::getline(in, url) && Answers(url)) return new PgServer(url);
      return new PgServer();  // stopped by its destructor: never, so at exit below
    }();
    static struct Stopper {
      ~Stopper() { delete shared; }
    } stopper;
    return *shared;
  }

  // postgresql://touchpoint@127.0.0.1:PORT (no database).
  const std::string& url() const { return url_; }

  // Stops the server (fast: sessions are ended) and starts it again on
  // the same port; only for a server of one's own.
  void Stop() { Cluster("stop"); }
  void Start() {
    Cluster("start");
    std::ifstream in(dir_ + "/url");
    std::getline(in, url_);
  }

  // Sends `signal` to every process of the server, the postmaster first:
  // SIGSTOP freezes it (a frozen VM, a stalled disk: connections stay up,
  // nothing answers), SIGCONT lets it go on. Only for a server of one's own.
  void SignalAll(int signal) {
    std::ifstream in(dir_ + "/data/postmaster.pid");
    pid_t postmaster = 0;
    ASSERT_TRUE(in >> postmaster) << "no postmaster.pid in " << dir_;
    ::kill(postmaster, signal);
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat_file(entry.path() / "stat");
      std::string stat;
      std::getline(stat_file, stat);
      // "pid (comm) state ppid ...": the command may hold spaces and ')'.
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state;
      pid_t ppid = 0;
      if (rest >> state >> ppid && ppid == postmaster) ::kill(std::stoi(name), signal);
    }
  }

  // A fresh database for one test, dropped when it goes.
  class Database {
   public:
    Database(PgServer& server, std::string name) : server_(server), name_(std::move(name)) {
      server_.Admin("CREATE DATABASE " + name_);
    }
    ~Database() {
      server_.Admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
      // (Its grants went with the database.)
      if (!role_.empty()) server_.Admin("DROP ROLE IF EXISTS " + role_);
    }
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;
    std::string url() const { return server_.url() + "/" + name_; }
    const std::string& name() const { return name_; }
    // Another role of the server, made once: it may log in and use every
    // table and sequence of this database as they are now, and is neither
    // a superuser nor granted pg_read_all_stats (so pg_stat_activity shows
    // it other roles' sessions without their start times). Its name;
    // dropped with the database.
    const std::string& AnotherRole() {
      if (!role_.empty()) return role_;
      role_ = "other_" + name_;
      server_.Admin("CREATE ROLE " + role_ + " LOGIN");
      pg::Connection::Open(url(), "test")
          ->Exec("GRANT ALL ON SCHEMA public TO " + role_ +
                 "; GRANT ALL ON ALL TABLES IN SCHEMA public TO " + role_ +
                 "; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + role_);
      return role_;
    }
    // The URL of this database as `role` (the server's URL names its
    // superuser, touchpoint).
    std::string UrlAs(const std::string& role) const {
      std::string as = url();
      const std::string user = "touchpoint@";
      as.replace(as.find(user), user.size(), role + "@");
      return as;
    }
    // Ends (as an administrator or a failover would) the sessions on this
    // database whose application_name is LIKE `application`, and waits
    // until they are gone.
    void EndSessions(const std::string& application = "touchpointd") {
      server_.Admin(
          "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE "
          "datname = '" +
          name_ + "' AND application_name LIKE '" + application + "'");
    }

   private:
    PgServer& server_;
    std::string name_;
    std::string role_;  // AnotherRole()'s, once made
  };
  std::unique_ptr<Database> NewDatabase() {
    static std::atomic<int> next{0};
    return std::make_unique<Database>(
        *this, "tp_test_" + std::to_string(::getpid()) + "_" + std::to_string(next++));
  }

  // Runs `sql` on the server's maintenance database. Waits up to 30 s to
  // connect, not the daemon's 2: a server starved by a sanitized suite on
  // two cores once took longer to drop a test's database.
  void Admin(const std::string& sql) {
    try {
      auto conn = pg::Connection::Open(url_ + "/postgres?connect_timeout=30", "touchpoint-tests");
      conn->Exec(sql);
    } catch (const std::exception& e) {
      ADD_FAILURE() << sql << ": " << e.what();
    }
  }

 private:
  explicit PgServer(std::string url) : url_(std::move(url)) {}

  static bool Answers(const std::string& url) {
    try {
      pg::Connection::Open(url + "/postgres", "touchpoint-tests");
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  void Cluster(const std::string& command, const std::string& primary = "") {
    const std::string cmd = (settings_.empty() ? "" : "TP_PG_SETTINGS='" + settings_ + "' ") +
                            std::string(TP_PG_CLUSTER_SCRIPT) + " " + command + " " + dir_ +
                            (primary.empty() ? "" : " '" + primary + "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  std::unique_ptr<TempDir> owned_;
  std::string settings_;
  std::string dir_;
  std::string url_;
};

}  // namespace tp::testing
