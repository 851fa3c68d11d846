// The end-to-end benchmark's harness (docs/benchmarks.md): one real
// touchpointd process, and the load it is driven with (purchase
// and event bodies posted from several connections, queue consumers, a
// webhook receiver). The figures are in e2e_bench.cc, events_figure.cc and
// pg_sizes.cc.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
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
#include <unordered_set>
#include <utility>
#include <vector>

#include "burst_config.h"
#include "core/time.h"
#include "http/client.h"
#include "http/server.h"
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

// --- load generation --------------------------------------------------------

struct Purchase {
  std::int64_t buyer = 0;
  tp::Instant at;
};

// JSON array bodies of `batch` purchases each: order o<i> by buyer b<buyer>.
inline std::vector<std::string> Bodies(const std::vector<Purchase>& purchases, std::size_t batch) {
  std::vector<std::string> bodies;
  for (std::size_t start = 0; start < purchases.size(); start += batch) {
    std::string body = "[";
    const std::size_t end = std::min(purchases.size(), start + batch);
    for (std::size_t i = start; i < end; ++i) {
      if (i > start) body += ',';
      body += R"({"order_id":"o)" + std::to_string(i) + R"(","buyer_id":"b)" +
              std::to_string(purchases[i].buyer) +
              R"(","product":"daily","quantity":2,"amount":240,"purchased_at":")" +
              Rfc3339(purchases[i].at) + "\"}";
    }
    body += ']';
    bodies.push_back(std::move(body));
  }
  return bodies;
}

struct IngestResult {
  double seconds = 0;
  std::int64_t purchases = 0;
  std::int64_t touchpoints = 0;
};

// POSTs every body from `connections` keep-alive connections at once.
inline IngestResult Post(const Daemon& daemon, const std::vector<std::string>& bodies,
                         int connections = 2, const char* target = "/v1/purchases") {
  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> purchases{0}, touchpoints{0};
  std::mutex error_mutex;
  std::string error;
  const auto started = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      auto client = daemon.Client();
      for (std::size_t i = next++; i < bodies.size(); i = next++) {
        auto r = client->Request("POST", target, bodies[i]);
        if (!r.ok() || r->status != 200) {
          std::lock_guard lock(error_mutex);
          error = r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 300)
                         : r.status().message();
          return;
        }
        const json answer = json::parse(r->body);
        purchases += answer.at("accepted").get<std::int64_t>();
        touchpoints += answer.value("touchpoints_planned", std::int64_t{0});
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!error.empty()) Fail("ingest failed: " + error);
  return {Seconds(Steady::now() - started), purchases, touchpoints};
}

// Asks `daemon` for /healthz back to back (10 ms apart) on a thread of its
// own while it lives: the slowest answer is about how long the daemon's
// loop was held meanwhile.
class StallWatch {
 public:
  explicit StallWatch(const Daemon& daemon)
      : thread_([this, client = daemon.Client()] {
          while (!stop_) {
            const auto asked = Steady::now();
            auto r = client->Request("GET", "/healthz", "");
            const double ms = Seconds(Steady::now() - asked) * 1000;
            if (!r.ok()) Fail("/healthz failed: " + r.status().message());
            max_ms_ = std::max(max_ms_.load(), ms);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  ~StallWatch() { Stop(); }
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

  // Stops asking; the slowest answer, in ms.
  double Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return max_ms_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<double> max_ms_{0};
  std::thread thread_;
};

// How consuming went: each ack's answer (when, and how many were acked by
// then, in order), and the leases that found nothing.
struct Consumed {
  std::vector<std::pair<Steady::time_point, std::int64_t>> acks;
  std::int64_t empty_leases = 0;

  // "50% acked at 1.20 s, 90% at ..., all at ...; 812 empty leases": from
  // `from` (the first due time).
  std::string Describe(Steady::time_point from) const {
    if (acks.empty()) return "nothing acked";
    const std::int64_t all = acks.back().second;
    const auto at = [&](double share) {
      const auto want = static_cast<std::int64_t>(share * static_cast<double>(all));
      auto it =
          std::find_if(acks.begin(), acks.end(), [&](const auto& a) { return a.second >= want; });
      char text[32];
      std::snprintf(text, sizeof text, "%.3f",
                    std::chrono::duration<double>(it->first - from).count());
      return std::string(text);
    };
    return "50% acked at " + at(0.5) + " s, 90% at " + at(0.9) + ", 99% at " + at(0.99) +
           ", all at " + at(1.0) + "; " + std::to_string(empty_leases) + " empty leases";
  }
};

// Leases and acks from `queue` until `expected` messages came; calls
// `on_message(text, received_at_ms)` for each (under a lock), with the
// message's text from its event on. Returns when the
// last ack was answered; `consumed`, if given, gets how it went.
// With several daemons, consumer c leases from daemons[c % size].
template <typename OnMessage>
inline Steady::time_point Consume(const std::vector<const Daemon*>& daemons, std::int64_t expected,
                                  int consumers, Steady::duration idle_poll, OnMessage on_message,
                                  Consumed* consumed = nullptr) {
  std::atomic<std::int64_t> received{0};
  std::mutex mutex;
  Steady::time_point last_ack{};
  std::string error;
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      auto client = daemons[static_cast<std::size_t>(c) % daemons.size()]->Client();
      const auto deadline = Steady::now() + std::chrono::minutes(10);
      while (received < expected && Steady::now() < deadline) {
        auto r = client->Request("POST", "/v1/queues/outbox/lease",
                                 R"({"max":1000,"visibility_s":600})");
        const double at = NowMs();
        if (!r.ok() || r->status != 200) {
          std::lock_guard lock(mutex);
          error = r.ok() ? r->body : r.status().message();
          return;
        }
        // The daemon writes {"receipt":"R","deliveries":N,"event":{...}} per
        // message; scanning for the receipts keeps this process light, so the
        // figure is the daemon's, not this parser's.
        static constexpr std::string_view kReceipt = R"({"receipt":")";
        std::string receipts = R"({"receipts":[)";
        std::int64_t count = 0;
        {
          std::lock_guard lock(mutex);
          for (auto at_receipt = r->body.find(kReceipt); at_receipt != std::string::npos;) {
            const auto start = at_receipt + kReceipt.size();
            const auto end = r->body.find('"', start);
            const auto next = r->body.find(kReceipt, end);
            if (count > 0) receipts += ',';
            receipts += '"';
            receipts.append(r->body, start, end - start);
            receipts += '"';
            on_message(std::string_view(r->body).substr(
                           end, next == std::string::npos ? std::string::npos : next - end),
                       at);
            ++count;
            at_receipt = next;
          }
        }
        if (count == 0) {
          if (consumed != nullptr) {
            std::lock_guard lock(mutex);
            ++consumed->empty_leases;
          }
          std::this_thread::sleep_for(idle_poll);
          continue;
        }
        receipts += "]}";
        auto a = client->Request("POST", "/v1/queues/outbox/ack", receipts);
        if (!a.ok() || a->status != 200 ||
            json::parse(a->body).at("acked").get<std::int64_t>() != count) {
          std::lock_guard lock(mutex);
          error = a.ok() ? a->body : a.status().message();
          return;
        }
        std::lock_guard lock(mutex);
        received += count;
        last_ack = std::max(last_ack, Steady::now());
        if (consumed != nullptr) consumed->acks.emplace_back(last_ack, received.load());
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!error.empty()) Fail("consumer failed: " + error);
  if (received < expected) {
    Fail("consumer got " + std::to_string(received.load()) + " of " + std::to_string(expected));
  }
  return last_ack;
}
template <typename OnMessage>
inline Steady::time_point Consume(const Daemon& daemon, std::int64_t expected, int consumers,
                                  Steady::duration idle_poll, OnMessage on_message,
                                  Consumed* consumed = nullptr) {
  return Consume(std::vector<const Daemon*>{&daemon}, expected, consumers, idle_poll,
                 std::move(on_message), consumed);
}

// A webhook receiver on loopback that answers 200 at once, on its own thread.
class Receiver {
 public:
  Receiver() : server_(io_, tp::HttpLimits{}) {
    if (tp::Status s = server_.Listen("127.0.0.1:0"); !s.ok()) Fail(s.message());
    server_.Serve([this](tp::HttpRequest request, tp::HttpRespond respond) {
      Handle(request);
      respond({200, "", "text/plain"});
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Receiver() {
    server_.Stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::string url() const { return "http://" + server_.LocalAddress() + "/hook"; }
  std::int64_t requests() const { return requests_; }
  std::size_t unique() {
    std::lock_guard lock(mutex_);
    return ids_.size();
  }
  Steady::time_point last() {
    std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  void Handle(const tp::HttpRequest& request) {
    ++requests_;
    const auto at = request.body.find(R"("id":")");
    std::string id = at == std::string::npos ? "" : request.body.substr(at + 6, 34);
    std::lock_guard lock(mutex_);
    ids_.insert(std::move(id));
    last_ = Steady::now();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  tp::HttpServer server_;
  std::thread thread_;
  std::atomic<std::int64_t> requests_{0};
  std::mutex mutex_;
  std::unordered_set<std::string> ids_;
  Steady::time_point last_{};
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

// `events_per_s` and `report_s_1m` (events_figure.cc).
void EventsFigure(const Options& options, const std::string& work);

// The daemon's PostgreSQL WAL position, to measure what follows (pg_sizes.cc).
std::string PgWalPosition(const Daemon& daemon);
// Notes each table's and index's size (bytes per touchpoint and per
// purchase), the WAL written since `wal_before`, and a VACUUM's time;
// the database's size (pg_sizes.cc).
std::uintmax_t PgSizes(const Daemon& daemon, const IngestResult& r, const std::string& wal_before);

}  // namespace tp::e2e
