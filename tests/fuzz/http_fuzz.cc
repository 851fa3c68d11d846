// libFuzzer target: the HTTP request path, in process. One daemon
// (daemon/daemon.h: HTTP server, routing, JSON bodies, the SQLite store, the
// scheduler) runs for the whole process on an io_context driven from the
// fuzzing thread; each input is written raw to a fresh connection, which is
// then half-closed, and the loop runs until the daemon closes it.
//
// Beyond not crashing: no answer is a 500 (an exception or a store error),
// and the daemon still answers GET /healthz with 200 every kHealthEvery
// inputs and after any input it did not finish within kDeadline.
#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <spdlog/spdlog.h>
#include <stdlib.h>  // mkdtemp

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "daemon/daemon.h"
#include "fuzz_support.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::milliseconds(200);
constexpr auto kConnectDeadline = std::chrono::seconds(5);
constexpr auto kHealthDeadline = std::chrono::seconds(5);
constexpr int kHealthEvery = 256;

struct Server {
  asio::io_context io{1};
  tp::SystemClock clock;
  std::string dir;  // the database's
  std::unique_ptr<tp::Daemon> daemon;
  tcp::endpoint endpoint;
};
// Lives until exit; LSan sees it through this pointer if exit comes early.
Server* g_server = nullptr;

// Runs the loop until `done` or `until`; whether `done`.
bool RunUntil(const bool& done, SteadyClock::time_point until) {
  Server& s = *g_server;
  while (!done && SteadyClock::now() < until) {
    if (s.io.stopped()) s.io.restart();
    s.io.run_one_until(until);
  }
  return done;
}

// Writes `request` on a new connection, half-closes it and runs the loop
// until the daemon closes the connection (true) or `deadline` passes.
// `response` gets what was read either way.
bool Exchange(std::string_view request, std::string& response, SteadyClock::duration deadline) {
  Server& s = *g_server;
  tcp::socket client(s.io);
  // Not a blocking connect(): libFuzzer's timer signal makes it fail with
  // EINTR if it has to wait (a SYN retransmitted).
  bool connected = false;
  boost::system::error_code ec;
  const auto start = SteadyClock::now();
  client.async_connect(s.endpoint, [&](const boost::system::error_code& e) {
    ec = e;
    connected = true;
  });
  if (!RunUntil(connected, start + kConnectDeadline) || ec) {
    std::fprintf(stderr, "http_fuzz: cannot connect to the daemon: %s\n",
                 connected ? ec.message().c_str() : "timed out");
    std::abort();
  }
  if (SteadyClock::now() - start > kDeadline) {
    std::fprintf(stderr, "http_fuzz: connecting took %lld ms\n",
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            SteadyClock::now() - start)
                                            .count()));
  }
  bool done = false;
  // The daemon may answer and close before reading everything (a 400 ends
  // the connection): write errors are expected, and what it sent is read.
  asio::async_write(client, asio::buffer(request.data(), request.size()),
                    [&](const boost::system::error_code&, std::size_t) {
                      boost::system::error_code ignored;
                      client.shutdown(tcp::socket::shutdown_send, ignored);
                      asio::async_read(
                          client, asio::dynamic_buffer(response),
                          [&](const boost::system::error_code&, std::size_t) { done = true; });
                    });
  const bool closed = RunUntil(done, SteadyClock::now() + deadline);
  if (!closed) {
    // The handlers above refer to this frame: let them finish, aborted.
    client.close(ec);
    while (!done) s.io.run_one();
  }
  return closed;
}

// The status codes of the responses in `stream`, as far as it parses (the
// tail may be cut off where the daemon reset the connection).
std::vector<int> Statuses(std::string_view stream) {
  std::vector<int> out;
  while (stream.size() >= 12 && stream.starts_with("HTTP/1.")) {
    int status = 0;
    std::from_chars(stream.data() + 9, stream.data() + 12, status);
    out.push_back(status);
    const auto head_end = stream.find("\r\n\r\n");
    if (head_end == std::string_view::npos) break;
    const std::string_view head = stream.substr(0, head_end);
    constexpr std::string_view kLength = "\r\nContent-Length: ";
    const auto at = head.find(kLength);
    if (at == std::string_view::npos) break;
    std::size_t length = 0;
    const char* digits = head.data() + at + kLength.size();
    std::from_chars(digits, head.data() + head.size(), length);
    if (head_end + 4 + length > stream.size()) break;
    stream.remove_prefix(head_end + 4 + length);
  }
  return out;
}

void CheckHealthy() {
  std::string response;
  const bool closed =
      Exchange("GET /healthz HTTP/1.1\r\nHost: fuzz\r\n\r\n", response, kHealthDeadline);
  if (!closed || !response.starts_with("HTTP/1.1 200 ")) {
    std::fprintf(stderr, "http_fuzz: GET /healthz %s:\n%s\n",
                 closed ? "did not answer 200" : "timed out", response.c_str());
    std::abort();
  }
}

void StopServer() {
  Server* s = g_server;
  s->daemon->Stop();
  s->io.restart();
  s->io.run_for(std::chrono::seconds(2));
  s->daemon.reset();
  std::error_code ignored;
  std::filesystem::remove_all(s->dir, ignored);
  g_server = nullptr;
  delete s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Errors only: a refused request is logged at info or warn.
  spdlog::set_level(spdlog::level::err);
  g_server = new Server;
  // The database in memory where there is a tmpfs: the checkpoints' fsyncs
  // and write-back would otherwise set the pace.
  std::error_code ec;
  const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                         ? std::filesystem::path("/dev/shm")
                                         : std::filesystem::temp_directory_path();
  std::string dir = (base / "tp-http-fuzz-XXXXXX").string();
  FUZZ_CHECK(::mkdtemp(dir.data()) != nullptr);
  g_server->dir = dir;

  tp::DaemonOptions options;
  options.listen = "127.0.0.1:0";
  options.database = dir + "/touchpoint.db";
  options.version = "fuzz";
  options.handle_signals = false;
  auto daemon = tp::Daemon::Start(g_server->io, tp::fuzz::BriefRules(), options, g_server->clock);
  if (!daemon.ok()) {
    std::fprintf(stderr, "http_fuzz: cannot start the daemon: %s\n",
                 daemon.status().message().c_str());
    std::abort();
  }
  g_server->daemon = std::move(*daemon);
  const std::string address = g_server->daemon->Address();
  const auto colon = address.rfind(':');
  unsigned short port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  g_server->endpoint = tcp::endpoint(asio::ip::make_address(address.substr(0, colon)), port);
  std::atexit(StopServer);
  CheckHealthy();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static int inputs = 0;
  // For a person replaying inputs by hand: TP_FUZZ_SHOW=1 prints each answer.
  static const bool show = std::getenv("TP_FUZZ_SHOW") != nullptr;
  std::string response;
  const bool closed =
      Exchange(std::string_view(reinterpret_cast<const char*>(data), size), response, kDeadline);
  if (show) std::fprintf(stderr, "%s\n", response.c_str());
  FUZZ_CHECK(response.empty() || response.starts_with("HTTP/1."));
  for (int status : Statuses(response)) {
    if (status == 500) {
      std::fprintf(stderr, "http_fuzz: a 500:\n%s\n", response.c_str());
      std::abort();
    }
  }
  if (!closed) {
    std::fprintf(stderr, "http_fuzz: the connection was still open after %lld ms\n",
                 static_cast<long long>(kDeadline.count()));
  }
  if (!closed || ++inputs % kHealthEvery == 0) CheckHealthy();
  return 0;
}
