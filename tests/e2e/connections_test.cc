// End-to-end: a real touchpointd serves at most `http.max_connections`
// connections at once; a client past them takes the place of the
// connection idle longest, or waits in the kernel's backlog until one is
// idle or closes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_process.h"
#include "harness.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Sends a keep-alive GET /healthz on `fd`; what arrives within `ms`
// (empty if nothing did).
std::string AskHealth(int fd, int ms) {
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return {};
  }
  pollfd ready{fd, POLLIN, 0};
  if (::poll(&ready, 1, ms) != 1) return {};
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Whether `fd` has something to read within `ms`.
bool Answered(int fd, int ms) {
  pollfd ready{fd, POLLIN, 0};
  return ::poll(&ready, 1, ms) == 1;
}

// Sends `bytes` on `fd`, all of them.
bool Send(int fd, std::string_view bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

// What one read on `fd` gets within `ms`: empty if nothing came, "EOF" if
// the daemon closed the connection.
std::string Receive(int fd, int ms) {
  if (!Answered(fd, ms)) return {};
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n == 0) return "EOF";
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// GET /metrics on `fd` (keep-alive): the whole answer.
std::string Scrape(int fd) {
  if (!Send(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) return {};
  std::string scrape;
  const auto done = [&] {
    const auto head_end = scrape.find("\r\n\r\n");
    const auto length = scrape.find("Content-Length: ");
    if (head_end == std::string::npos || length == std::string::npos) return false;
    return scrape.size() - head_end - 4 >= std::stoul(scrape.substr(length + 16));
  };
  while (!done() && Answered(fd, 10'000)) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    scrape.append(buf, static_cast<std::size_t>(n));
  }
  return scrape;
}

constexpr std::string_view kHealthHead = "GET /healthz HTTP/1.1\r\nHost: x\r\n";

// Makes `fd` busy: a whole request and half of the next sent at once, and
// the first answered, so the daemon holds the half (the rest: "\r\n").
bool MakeBusy(int fd) {
  const std::string both = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(kHealthHead);
  return Send(fd, both) && Receive(fd, 10'000).starts_with("HTTP/1.1 200");
}

class ConnectionsTest : public ::testing::Test {
 protected:
  ~ConnectionsTest() override { CloseAll(); }

  // A daemon that serves at most `max` connections.
  DaemonProcess& Start(int max) {
    testing::WriteFile(dir_.path() + "/touchpoint.yaml",
                       std::string(testing::kBriefConfig) +
                           "http: {max_connections: " + std::to_string(max) + "}\n");
    daemon_ = std::make_unique<DaemonProcess>(dir_.path() + "/touchpoint.yaml",
                                              dir_.path() + "/tp.db", dir_.path() + "/daemon.log");
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }
  // A new connection to it (-1 if none), closed by CloseAll().
  int Connect() {
    const int fd = testing::RawConnect(daemon_->address());
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  void CloseAll() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::vector<int> fds_;
};

TEST_F(ConnectionsTest, PastTheMostAClientWaitsUntilOneIsIdle) {
  DaemonProcess& d = Start(2);
  const int first = Connect();
  const int second = Connect();
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  // The first is busy: half of a request is in.
  ASSERT_TRUE(MakeBusy(first));
  const std::string scrape = Scrape(second);
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections 2\n"));
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_max_connections 2\n"));
  // So is the second.
  ASSERT_TRUE(MakeBusy(second));

  // A third connects (the kernel takes it) and asks, but is not served
  // while both are busy...
  const int third = Connect();
  ASSERT_GE(third, 0);
  EXPECT_EQ(AskHealth(third, 500), "");
  EXPECT_TRUE(d.WaitForLog(
      "http: 2 connections open, the most http.max_connections allows, "
      "all busy with a request or closing after an error answer: new ones wait until one "
      "ends"));
  // ...and is once one of them has its answer and idles: that one closes.
  ASSERT_TRUE(Send(first, "\r\n"));
  EXPECT_THAT(Receive(first, 10'000), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(Receive(first, 10'000), "EOF");
  EXPECT_THAT(Receive(third, 10'000), StartsWith("HTTP/1.1 200"));
  // The second, still busy, was left alone.
  ASSERT_TRUE(Send(second, "\r\n"));
  EXPECT_THAT(Receive(second, 10'000), StartsWith("HTTP/1.1 200"));
  CloseAll();
  // Served as before once they are gone.
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(ConnectionsTest, ANewClientTakesThePlaceOfTheConnectionIdleLongest) {
  DaemonProcess& d = Start(3);
  // The oldest connection is half-way through a request: not idle.
  const int busy = Connect();
  ASSERT_GE(busy, 0);
  ASSERT_TRUE(MakeBusy(busy));
  // Two keep-alive clients, served once each, then idle: `older` first.
  const int older = Connect();
  ASSERT_GE(older, 0);
  EXPECT_THAT(AskHealth(older, 10'000), StartsWith("HTTP/1.1 200"));
  const int younger = Connect();
  ASSERT_GE(younger, 0);
  EXPECT_THAT(AskHealth(younger, 10'000), StartsWith("HTTP/1.1 200"));

  // A new client is served at once: the connection idle longest closed.
  const int fresh = Connect();
  ASSERT_GE(fresh, 0);
  EXPECT_THAT(AskHealth(fresh, 10'000), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(Receive(older, 10'000), "EOF");
  // The others stay open and served.
  EXPECT_THAT(AskHealth(younger, 10'000), StartsWith("HTTP/1.1 200"));
  ASSERT_TRUE(Send(busy, "\r\n"));
  EXPECT_THAT(Receive(busy, 10'000), StartsWith("HTTP/1.1 200"));
  const std::string scrape = Scrape(younger);
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_idle_closed_total 1\n"));
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections 3\n"));
  // `busy` and `fresh`, answered; the scrape's own connection is busy.
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections_idle 2\n"));
  EXPECT_THAT(d.log(), Not(HasSubstr("all busy with a request")));
}

// A new connection that has sent nothing yet is not closed for the next
// client before it has had a second to send its request: else, with every
// other connection busy, each client arriving would close the one before.
TEST_F(ConnectionsTest, ANewConnectionHasASecondToSendItsRequest) {
  DaemonProcess& d = Start(2);
  const int busy = Connect();
  ASSERT_GE(busy, 0);
  ASSERT_TRUE(MakeBusy(busy));
  const auto connected = std::chrono::steady_clock::now();
  const int silent = Connect();
  ASSERT_GE(silent, 0);
  const int next = Connect();
  ASSERT_GE(next, 0);
  EXPECT_THAT(AskHealth(next, 10'000), StartsWith("HTTP/1.1 200"));
  // (The daemon's second starts after the connect returned.)
  EXPECT_GE(std::chrono::steady_clock::now() - connected, std::chrono::seconds(1));
  EXPECT_EQ(Receive(silent, 10'000), "EOF");
  EXPECT_FALSE(d.log().find("all busy with a request") != std::string::npos);
}

// A connection that drains after an error answer is neither idle nor
// closed for a new client (with the client's bytes unread, the kernel would
// reset it and lose the answer): it ends within its two seconds, and the
// client gets in then.
TEST_F(ConnectionsTest, AConnectionClosingAfterAnErrorAnswerIsLeftToEnd) {
  DaemonProcess& d = Start(3);
  const int busy = Connect();
  ASSERT_GE(busy, 0);
  ASSERT_TRUE(MakeBusy(busy));
  const int refused = Connect();
  ASSERT_GE(refused, 0);
  ASSERT_TRUE(Send(refused,
                   "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                   "application/json\r\nContent-Length: 10000000\r\n\r\n"));
  EXPECT_THAT(Receive(refused, 10'000), StartsWith("HTTP/1.1 413"));
  // (The scrape's own connection is busy answering it.)
  const int probe = Connect();
  ASSERT_GE(probe, 0);
  const std::string scrape = Scrape(probe);
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections 3\n"));
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections_idle 0\n"));
  ASSERT_TRUE(MakeBusy(probe));

  const int next = Connect();
  ASSERT_GE(next, 0);
  EXPECT_THAT(AskHealth(next, 10'000), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(Receive(refused, 10'000), "EOF");
  EXPECT_TRUE(d.WaitForLog("all busy with a request or closing after an error answer"));
  EXPECT_THAT(Scrape(next), HasSubstr("\ntouchpoint_http_idle_closed_total 0\n"));
}

}  // namespace
}  // namespace tp
