// Test support: a real touchpointd process on a free loopback port with its
// own database and log file, driven over real HTTP.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"

namespace tp::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The program `name` as found on $PATH, or `name` if it is not there.
inline std::string OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return name;
}

inline void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream(path) << text;
}

// The value of one series (`name{labels}` as exposed) in a /metrics page,
// or -1 if it is not there.
inline double Sample(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// A new TCP connection to HOST:PORT (IPv4), or -1.
inline int RawConnect(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What `fd` receives until the peer closes it (or its receive timeout
// passes); closes it.
inline std::string ReadUntilClosed(int fd) {
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

// Sends `request` as raw bytes on a new connection to HOST:PORT and returns
// everything the server sends until it closes (or 5 s pass).
inline std::string RawExchange(const std::string& address, std::string_view request) {
  const int fd = RawConnect(address);
  if (fd < 0) return {};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  // Nothing more to send: a daemon draining the connection after an error
  // answer closes it now rather than after its 2 s.
  ::shutdown(fd, SHUT_WR);
  return ReadUntilClosed(fd);
}

class DaemonProcess {
 public:
  DaemonProcess(std::string config, std::string database, std::string log)
      : config_(std::move(config)), database_(std::move(database)), log_(std::move(log)) {}
  ~DaemonProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // For the next Start(): an environment variable, more command-line arguments.
  void SetEnv(std::string name, std::string value) {
    env_.emplace_back(std::move(name), std::move(value));
  }
  void AddArgs(std::vector<std::string> args) {
    args_.insert(args_.end(), args.begin(), args.end());
  }
  // A command that runs the daemon: its arguments come first, then the
  // daemon's command line (e.g. unshare, to give it a file system of its own).
  void SetWrapper(std::vector<std::string> command) { wrapper_ = std::move(command); }
  pid_t pid() const { return pid_; }

  // Starts the daemon and waits until it listens. `listen` defaults to a free
  // port chosen by the daemon.
  ::testing::AssertionResult Start(const std::string& listen = "127.0.0.1:0") {
    const std::size_t log_offset = ReadFile(log_).size();
    // Everything the child needs is made before fork(): a test with threads
    // running forks while one of them may hold an allocator lock, and a
    // malloc in the child then waits forever (ASan's allocator does). The
    // child only makes async-signal-safe calls.
    std::vector<std::string> argv = wrapper_;
    for (std::string a : {std::string(TP_DAEMON_BINARY), std::string("--config"), config_,
                          std::string("--listen"), listen, std::string("--database"), database_}) {
      argv.push_back(std::move(a));
    }
    argv.insert(argv.end(), args_.begin(), args_.end());
    // A wrapper named without a path is looked up here: execve() does not.
    if (argv[0].find('/') == std::string::npos) argv[0] = OnPath(argv[0]);
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    for (const auto& [name, value] : env_) {
      // (clang 14, the sanitizer build's, cannot capture a structured binding)
      const std::string prefix = name + "=";
      std::erase_if(env, [&prefix](const std::string& e) { return e.starts_with(prefix); });
      env.push_back(prefix + value);
    }
    std::vector<char*> raw_argv, raw_env;
    for (auto& a : argv) raw_argv.push_back(a.data());
    raw_argv.push_back(nullptr);
    for (auto& e : env) raw_env.push_back(e.data());
    raw_env.push_back(nullptr);
    const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (log_fd < 0) return ::testing::AssertionFailure() << "cannot open " << log_;
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::dup2(log_fd, STDERR_FILENO) < 0 || ::dup2(log_fd, STDOUT_FILENO) < 0) ::_exit(127);
      ::execve(raw_argv[0], raw_argv.data(), raw_env.data());
      ::_exit(127);
    }
    ::close(log_fd);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string log = ReadFile(log_).substr(log_offset);
      const auto at = log.find("listening on ");
      if (at != std::string::npos) {
        const auto start = at + 13;
        const auto end = log.find(' ', start);
        if (end != std::string::npos) {
          address_ = log.substr(start, end - start);
          auto client = HttpClient::Create("http://" + address_);
          if (!client.ok()) return ::testing::AssertionFailure() << client.status().message();
          client_ = std::move(*client);
          client_->set_timeout(std::chrono::seconds(20));
          return ::testing::AssertionSuccess();
        }
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return ::testing::AssertionFailure() << "touchpointd exited early:\n" << log;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ::testing::AssertionFailure() << "touchpointd did not start:\n" << ReadFile(log_);
  }

  void Signal(int signo) {
    if (pid_ > 0) ::kill(pid_, signo);
  }
  // Waits for the process; its exit code, or 128 + the signal that ended it.
  int Wait() {
    if (pid_ <= 0) return WIFEXITED(exit_status_) ? WEXITSTATUS(exit_status_) : -1;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = status;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  }
  // Waits at most `limit` for the process: its exit code as Wait()'s, or
  // nullopt if it still runs.
  std::optional<int> WaitFor(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Wait();
  }
  void Kill9() {
    Signal(SIGKILL);
    Wait();
  }

  // Whether the log comes to hold `text` within `within` (looked at every
  // 10 ms); the log in the failure if not.
  ::testing::AssertionResult WaitForLog(
      const std::string& text, std::chrono::milliseconds within = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (log().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure() << "no '" << text << "' in:\n" << log();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ::testing::AssertionSuccess();
  }

  const std::string& address() const { return address_; }
  std::string url() const { return "http://" + address_; }
  std::string log() const { return ReadFile(log_); }
  HttpClient& http() { return *client_; }

  // A request whose answer must be JSON; fails the test otherwise.
  std::pair<int, nlohmann::json> Call(std::string_view method, std::string_view target,
                                      const nlohmann::json& body = nullptr) {
    auto r = client_->Request(method, target, body.is_null() ? std::string() : body.dump());
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {0, nullptr};
    auto parsed = nlohmann::json::parse(r->body, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r->body;
    return {r->status, parsed};
  }

 private:
  std::string config_, database_, log_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::vector<std::string> args_;
  std::vector<std::string> wrapper_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::string address_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace tp::testing
