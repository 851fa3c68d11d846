// HttpClient against a loopback server written here, so that what reaches
// the server can be counted: how a reused connection's failure is tried
// again.
#include "http/client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace tp {
namespace {

// A server on loopback. kFirstOnly: answers the first request it reads,
// with 200 on a kept-alive connection, and reads every later one without
// answering it. kEachThenCloses: answers each request with 200, without
// "Connection: close", then closes the connection (as a daemon closes an
// idle one).
class LoopbackServer {
 public:
  enum class Mode { kFirstOnly, kEachThenCloses };
  explicit LoopbackServer(Mode mode) : mode_(mode) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener_, 8) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    close(listener_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  int connections() const { return connections_; }

 private:
  struct Peer {
    int fd;
    std::string read;
  };

  void Serve() {
    std::vector<Peer> peers;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (const auto& p : peers) fds.push_back({p.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        peers.push_back({accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC), {}});
        ++connections_;
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        Peer& p = peers[i - 1];
        char buf[4096];
        const ssize_t n = read(p.fd, buf, sizeof buf);
        if (n <= 0) continue;
        p.read.append(buf, static_cast<std::size_t>(n));
        // Requests without bodies: each ends at its blank line.
        for (auto end = p.read.find("\r\n\r\n"); end != std::string::npos;
             end = p.read.find("\r\n\r\n")) {
          p.read.erase(0, end + 4);
          if (requests_++ == 0 || mode_ == Mode::kEachThenCloses) {
            const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (write(p.fd, ok.data(), ok.size()) != static_cast<ssize_t>(ok.size())) {
              ADD_FAILURE() << "cannot answer";
            }
          }
          if (mode_ == Mode::kEachThenCloses) {
            close(p.fd);
            p.fd = -1;
            break;
          }
        }
      }
      std::erase_if(peers, [](const Peer& p) { return p.fd < 0; });
    }
    for (const auto& p : peers) close(p.fd);
  }

  const Mode mode_;

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// A reused connection closed by the daemon while idle is tried once more
// on a new one; one that timed out is not: the daemon has the request,
// and sending it again would send it twice and wait twice as long.
TEST(HttpClientTest, ARequestTimedOutOnAReusedConnectionIsNotSentAgain) {
  LoopbackServer server(LoopbackServer::Mode::kFirstOnly);
  auto client = HttpClient::Create(server.url());
  ASSERT_TRUE(client.ok()) << client.status().message();
  (*client)->set_timeout(std::chrono::milliseconds(300));
  auto first = (*client)->Request("GET", "/first");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->status, 200);
  auto second = (*client)->Request("GET", "/second");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("timed out"), std::string::npos)
      << second.status().message();
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, AReusedConnectionClosedWhileIdleIsReplacedAndTheRequestSent) {
  LoopbackServer server(LoopbackServer::Mode::kEachThenCloses);
  auto client = HttpClient::Create(server.url());
  ASSERT_TRUE(client.ok()) << client.status().message();
  (*client)->set_timeout(std::chrono::seconds(5));
  auto first = (*client)->Request("GET", "/first");
  ASSERT_TRUE(first.ok()) << first.status().message();
  // The server closed the connection the client keeps (at once after its
  // answer, before it could read another request on it).
  auto second = (*client)->Request("GET", "/second");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "ok");
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.connections(), 2);
}

}  // namespace
}  // namespace tp
