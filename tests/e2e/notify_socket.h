// Test support: systemd's side of sd_notify(3), a datagram socket bound
// where NOTIFY_SOCKET tells a daemon to write.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace tp::testing {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~NotifySocket() { ::close(fd_); }

  // The next message, or "" after `timeout`.
  std::string Next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }
  // The next message other than a watchdog ping or a start's extension
  // (a slow start, as under a sanitizer, sends those).
  std::string NextState(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    for (;;) {
      std::string m = Next(timeout);
      if (m != "WATCHDOG=1" && !m.starts_with("EXTEND_TIMEOUT_USEC=")) return m;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace tp::testing
