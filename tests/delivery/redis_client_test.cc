// The Redis client against a server that takes a batch and never answers:
// the batch is given up at the timeout with a reset, so that nothing of it
// left in the kernel reaches Redis later, behind batches sent since.
#include "delivery/redis_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

namespace tp {
namespace {

TEST(RedisClientTest, ABatchGivenUpAtItsTimeoutResetsItsConnection) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  // The server reads what comes and answers nothing; how the client's end
  // of the connection ended: 0 (closed), or errno (reset).
  int ended = -1;
  std::thread server([&] {
    pollfd ready{listener, POLLIN, 0};
    if (::poll(&ready, 1, 10'000) != 1) return;  // (the client never came)
    const int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    timeval tv{10, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buffer[256];
    ssize_t n = 0;
    while ((n = ::recv(conn, buffer, sizeof buffer, 0)) > 0) {
    }
    ended = n == 0 ? 0 : errno;
    ::close(conn);
  });

  boost::asio::io_context io;
  auto url = ParseRedisUrl("redis://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  ASSERT_TRUE(url.ok()) << url.status().message();
  RedisClient client(io, *url, std::chrono::milliseconds(300));
  std::optional<Status> done;
  client.Pipeline({{"XADD", "s", "*", "id", "1"}},
                  [&](Status s, std::vector<RedisReply>) { done = std::move(s); });
  for (int i = 0; i < 100 && !done; ++i) io.run_for(std::chrono::milliseconds(50));
  server.join();
  ::close(listener);
  ASSERT_TRUE(done.has_value());
  EXPECT_THAT(done->message(), ::testing::HasSubstr("timed out after 300 ms"));
  EXPECT_EQ(ended, ECONNRESET);
}

}  // namespace
}  // namespace tp
