// End-to-end: a real touchpointd serves at most `http.max_connections`
// connections at once; a client past them waits in the kernel's backlog,
// and is served once one closes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "daemon_process.h"
#include "harness.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
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

TEST(ConnectionsTest, PastTheMostAClientWaitsUntilOneCloses) {
  testing::TempDir dir;
  testing::WriteFile(dir.path() + "/touchpoint.yaml",
                     std::string(testing::kBriefConfig) + "http: {max_connections: 2}\n");
  DaemonProcess d(dir.path() + "/touchpoint.yaml", dir.path() + "/tp.db",
                  dir.path() + "/daemon.log");
  ASSERT_TRUE(d.Start());
  const int first = testing::RawConnect(d.address());
  const int second = testing::RawConnect(d.address());
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  EXPECT_THAT(AskHealth(first, 10'000), StartsWith("HTTP/1.1 200"));
  const std::string metrics = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(second, metrics.data(), metrics.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(metrics.size()));
  std::string scrape;
  const auto has = [&](const char* line) { return scrape.find(line) != std::string::npos; };
  while (
      !(has("\ntouchpoint_http_connections 2\n") && has("\ntouchpoint_http_max_connections 2\n")) &&
      Answered(second, 10'000)) {
    char buf[4096];
    const ssize_t n = ::recv(second, buf, sizeof buf, 0);
    if (n <= 0) break;
    scrape.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_connections 2\n"));
  EXPECT_THAT(scrape, HasSubstr("\ntouchpoint_http_max_connections 2\n"));

  // A third connects (the kernel takes it) and asks, but is not served
  // while both stay open...
  const int third = testing::RawConnect(d.address());
  ASSERT_GE(third, 0);
  EXPECT_EQ(AskHealth(third, 500), "");
  // ...and is once one of them closes.
  ::close(first);
  ASSERT_TRUE(Answered(third, 10'000));
  char buf[4096];
  const ssize_t n = ::recv(third, buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(buf, static_cast<std::size_t>(n)), StartsWith("HTTP/1.1 200"));
  ::close(second);
  ::close(third);
  EXPECT_THAT(d.log(), HasSubstr("http: 2 connections open, the most http.max_connections "
                                 "allows: new ones wait until one closes"));
  // Served as before once they are gone.
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

}  // namespace
}  // namespace tp
