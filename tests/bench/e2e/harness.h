// The end-to-end benchmark's harness (docs/benchmarks.md): one real
// touchpointd process with its own config and database, and what a bench
// reports and fails with. The load it is driven with is in load.h; the
// figures are in e2e_bench.cc, events_figure.cc, pending_figure.cc and
// pg_sizes.cc.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/time.h"
#include "http/client.h"
#include "options.h"
#include "pg/connection.h"
#include "proc.h"

namespace tp::e2e {

namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

// What a failed bench leaves running unless Fail() stops it: the daemons
// started and not yet stopped, and the bench's own PostgreSQL server.
struct Leftovers {
  std::mutex mutex;
  std::set<pid_t> daemons;
  std::string pg_dir;  // tests/pg/cluster.sh's DIR, once started
};
inline Leftovers& Left() {
  static Leftovers left;
  return left;
}

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "e2e_bench: %s\n", what.c_str());
  std::string pg_dir;
  {
    std::lock_guard lock(Left().mutex);
    for (pid_t pid : Left().daemons) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    Left().daemons.clear();
    pg_dir = std::exchange(Left().pg_dir, "");
  }
#ifdef TP_PG_CLUSTER_SCRIPT
  if (!pg_dir.empty()) {
    (void)std::system((std::string(TP_PG_CLUSTER_SCRIPT) + " stop " + pg_dir).c_str());
  }
#endif
  std::exit(1);
}

inline void Note(const std::string& what) {
  std::fprintf(stderr, "e2e_bench: %s\n", what.c_str());
  std::fflush(stderr);
}

inline void Metric(const char* name, double value, const char* unit) {
  std::printf("metric=%s value=%.6g unit=%s\n", name, value, unit);
  std::fflush(stdout);
}

inline double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

inline tp::Instant Now() { return std::chrono::time_point_cast<tp::Millis>(SystemClock::now()); }

// Wall-clock milliseconds since the epoch, with the microseconds.
inline double NowMs() {
  return std::chrono::duration<double, std::milli>(SystemClock::now().time_since_epoch()).count();
}

inline std::string Rfc3339(tp::Instant t) { return tp::FormatRfc3339(t, tp::UtcZone()); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path);
  out << text;
  if (!out) Fail("cannot write " + path);
}

// One touchpointd process with its own database and log.
class Daemon {
 public:
  Daemon(const Options& options, std::string config, std::string database, std::string log)
      : options_(options),
        config_(std::move(config)),
        database_(std::move(database)),
        log_(std::move(log)) {}
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      Forget();
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts it and waits until /healthz answers 200; returns the seconds that
  // took from fork().
  double Start() {
    const std::size_t log_offset = ReadFile(log_).size();
    const auto started = Steady::now();
    pid_ = ::fork();
    if (pid_ < 0) Fail("fork failed");
    if (pid_ == 0) {
      if (std::freopen(log_.c_str(), "a", stderr) == nullptr) ::_exit(127);
      ::dup2(::fileno(stderr), STDOUT_FILENO);
      std::vector<std::string> argv = {options_.daemon, "--config",   config_,  "--listen",
                                       "127.0.0.1:0",   "--database", database_};
      std::vector<char*> raw;
      for (auto& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(options_.daemon.c_str(), raw.data());
      ::_exit(127);
    }
    {
      std::lock_guard lock(Left().mutex);
      Left().daemons.insert(pid_);
    }
    const auto deadline = started + std::chrono::seconds(120);
    while (address_.empty()) {
      if (Steady::now() > deadline) Fail("touchpointd did not start:\n" + ReadFile(log_));
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        Forget();
        pid_ = -1;
        Fail("touchpointd exited:\n" + ReadFile(log_).substr(log_offset));
      }
      const std::string log = ReadFile(log_).substr(log_offset);
      if (auto at = log.find("listening on "); at != std::string::npos) {
        const auto end = log.find(' ', at + 13);
        if (end != std::string::npos) address_ = log.substr(at + 13, end - at - 13);
      }
      if (address_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto client = Client();
    for (;;) {
      auto r = client->Request("GET", "/healthz");
      if (r.ok() && r->status == 200) break;
      if (Steady::now() > deadline) Fail("touchpointd never became healthy");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Seconds(Steady::now() - started);
  }

  // SIGTERM, then wait for a clean exit.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    Forget();
    pid_ = -1;
    address_.clear();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Fail("touchpointd did not stop cleanly:\n" + ReadFile(log_));
    }
  }

  void Signal(int signo) const { ::kill(pid_, signo); }
  // Not for Fail() to stop any more: it has exited.
  void Forget() const {
    std::lock_guard lock(Left().mutex);
    Left().daemons.erase(pid_);
  }
  const std::string& config() const { return config_; }
  const std::string& database() const { return database_; }

  std::unique_ptr<tp::HttpClient> Client() const {
    auto client = tp::HttpClient::Create("http://" + address_);
    if (!client.ok()) Fail(client.status().message());
    (*client)->set_timeout(std::chrono::minutes(10));
    return std::move(*client);
  }

  // A /proc/PID/status field in MiB (VmRSS, VmHWM).
  double MemoryMiB(const char* field) const { return ProcField("status", field) / 1024; }

  // A /proc/PID/io counter (wchar: bytes written, rchar: bytes read).
  double IoBytes(const char* field) const { return ProcField("io", field); }

  // CPU seconds (user + system) of the daemon's main thread (the loop), or
  // of all its threads.
  double CpuSeconds(bool loop_only) const {
    const auto stat =
        ReadProcStat("/proc/" + std::to_string(pid_) +
                     (loop_only ? "/task/" + std::to_string(pid_) : std::string()) + "/stat");
    return stat ? stat->cpu_seconds : 0;
  }

 private:
  // The number after "FIELD:" in /proc/PID/FILE, or 0.
  double ProcField(const char* file, const char* field) const {
    std::istringstream in(ReadFile("/proc/" + std::to_string(pid_) + "/" + file));
    std::string line;
    const std::string prefix = std::string(field) + ":";
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) == 0) return std::strtod(line.c_str() + prefix.size(), nullptr);
    }
    return 0;
  }

  const Options& options_;
  std::string config_, database_, log_;
  pid_t pid_ = -1;
  std::string address_;
};

// The database of the figure `name` in `dir`: a SQLite file there, or a
// fresh PostgreSQL database on options.pg_url.
inline std::string FreshDatabase(const Options& options, const std::string& dir,
                                 const std::string& name) {
  if (!options.postgres) return dir + "/tp.db";
  std::string db = "bench_";
  for (char c : name) db += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  try {
    auto admin = tp::pg::Connection::Open(options.pg_url + "/postgres", "touchpoint-bench");
    admin->Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    admin->Exec("CREATE DATABASE " + db);
  } catch (const std::exception& e) {
    Fail(std::string("cannot make the database: ") + e.what());
  }
  return options.pg_url + "/" + db;
}

// Drops the PostgreSQL database FreshDatabase() made for a figure (`url`),
// so that its pages do not linger in the server's shared buffers for the
// next figure, or the next run, to write out or evict.
inline void DropDatabase(const Options& options, const std::string& url) {
  if (!options.postgres || url.rfind(options.pg_url + "/", 0) != 0) return;
  try {
    auto admin = tp::pg::Connection::Open(options.pg_url + "/postgres", "touchpoint-bench");
    admin->Exec("DROP DATABASE IF EXISTS " + url.substr(options.pg_url.size() + 1) +
                " WITH (FORCE)");
  } catch (const std::exception& e) {
    Note(std::string("cannot drop the database (left on the server): ") + e.what());
  }
}

// A fresh directory `work`/`name` with a config (the example's, or `yaml`)
// and a database, and a daemon for it (not started).
inline std::unique_ptr<Daemon> Fresh(const Options& options, const std::string& work,
                                     const std::string& name, const std::string& yaml) {
  const std::string dir = work + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config = dir + "/touchpoint.yaml";
  if (yaml.empty()) {
    fs::copy_file(options.example_config, config);
  } else {
    WriteFile(config, yaml);
  }
  return std::make_unique<Daemon>(options, config, FreshDatabase(options, dir, name),
                                  dir + "/touchpointd.log");
}

}  // namespace tp::e2e
