// Test support: a TCP proxy on loopback to a server, which can cut the
// server off: the connections through it are closed (as a firewall's
// reset would), and new ones are accepted but never answered, as by a
// host that drops packets, so a client connecting waits for its own
// timeout; or refuse them (Refuse()), as a stopped server's host does.
// Restore() forwards again. LoseTheAnswerToCommit() lets a COMMIT through
// and loses the server's answer to it: the commit is made, and the client
// hears only that its connection was lost.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tp::testing {

class CutProxy {
 public:
  // Forwards to the server at `server_url`
  // (postgresql://USER@127.0.0.1:PORT, as PgServer::url()).
  explicit CutProxy(const std::string& server_url)
      : server_url_(server_url),
        upstream_port_(std::stoi(server_url.substr(server_url.rfind(':') + 1))) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener_, 64) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("proxy: cannot listen on loopback");
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~CutProxy() {
    stopping_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (const int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : pumps_) t.join();
    for (const int fd : fds_) close(fd);
    close(listener_);
  }
  CutProxy(const CutProxy&) = delete;
  CutProxy& operator=(const CutProxy&) = delete;

  // The URL of `database` on the server, through this proxy.
  std::string url(const std::string& database) const {
    return server_url_.substr(0, server_url_.rfind(':') + 1) + std::to_string(port_) + "/" +
           database;
  }

  // Closes every connection through the proxy; those made from now on
  // get no answer.
  void Cut() {
    std::lock_guard lock(mutex_);
    cut_ = true;
    for (const int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  // Closes every connection through the proxy, and those made from now on
  // at once, as a stopped server's host refuses them.
  void Refuse() {
    std::lock_guard lock(mutex_);
    refuse_ = true;
    for (const int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  // The next COMMIT a client sends through the proxy reaches the server,
  // whose answer that it committed is dropped, and that connection is
  // closed: a commit made whose outcome the client cannot know.
  void LoseTheAnswerToCommit() { lose_commit_answer_ = true; }
  bool answer_lost() const { return answer_lost_; }
  // Forwards new connections again (those held while cut are closed).
  void Restore() {
    std::lock_guard lock(mutex_);
    cut_ = false;
    refuse_ = false;
    for (const int fd : fds_) shutdown(fd, SHUT_RDWR);
  }

 private:
  void Accept() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      std::lock_guard lock(mutex_);
      fds_.push_back(client);  // closed only at the end: no fd is reused
      if (refuse_) {
        shutdown(client, SHUT_RDWR);
        continue;
      }
      if (cut_) continue;  // held, never read nor answered
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
      if (server < 0) {
        shutdown(client, SHUT_RDWR);
        continue;
      }
      fds_.push_back(server);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        shutdown(client, SHUT_RDWR);
        continue;
      }
      // Set once the client's COMMIT went through: the server's answer
      // that completes it (CommandComplete, tag COMMIT) is dropped, and the
      // connection closed.
      auto committing = std::make_shared<std::atomic<bool>>(false);
      pumps_.emplace_back([this, client, server, committing] {
        Pump(client, server, [this, committing](std::string_view bytes) {
          // A simple query of COMMIT alone, as pg::Transaction sends it.
          static constexpr std::string_view kCommit(
              "Q\0\0\0\x0b"
              "COMMIT\0",
              12);
          if (bytes.find(kCommit) != std::string_view::npos &&
              lose_commit_answer_.exchange(false)) {
            *committing = true;
          }
          return true;
        });
      });
      pumps_.emplace_back([this, client, server, committing] {
        Pump(server, client, [this, committing](std::string_view bytes) {
          static constexpr std::string_view kCommitted(
              "C\0\0\0\x0b"
              "COMMIT\0",
              12);
          if (!*committing || bytes.find(kCommitted) == std::string_view::npos) return true;
          answer_lost_ = true;
          return false;
        });
      });
    }
  }
  // Copies `from` to `to` until either ends, or `pass` refuses what came
  // (which is not sent); then ends both.
  template <typename Pass>
  static void Pump(int from, int to, Pass pass) {
    char buffer[16384];
    for (;;) {
      const ssize_t n = recv(from, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      if (!pass(std::string_view(buffer, static_cast<std::size_t>(n)))) break;
      ssize_t sent = 0;
      while (sent < n) {
        const ssize_t w = send(to, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += w;
      }
      if (sent < n) break;
    }
    shutdown(from, SHUT_RDWR);
    shutdown(to, SHUT_RDWR);
  }

  std::string server_url_;
  int upstream_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  bool cut_ = false;
  bool refuse_ = false;
  std::atomic<bool> lose_commit_answer_{false};
  std::atomic<bool> answer_lost_{false};
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace tp::testing
