// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_set>

#include "http/server.h"

namespace tp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// What the read buffer holds besides a whole header: the bytes of one read
// (Beast reads at most 64 KiB at a time), where a chunk's size line or the
// trailers after the last chunk must fit. Beast's header limit does not
// cover those, so without a bound a client could send a size line that
// never ends and grow the buffer for as long as the request timeout lets it.
constexpr std::size_t kFramingBytes = 64 * 1024;

// After an error answer sent before the request was read to its end (a
// 413 for a body too large, a 431, a 400), the connection reads and drops
// what the client still sends, for up to this long, before it closes:
// closing with bytes unread makes the kernel reset the connection, and a
// client still sending its body would see the reset, not the answer.
constexpr std::chrono::seconds kLinger{2};

// A new connection is not closed to make room before it has had this long
// to send its first request: else, with every other connection busy, each
// client arriving would close the one accepted just before it.
constexpr std::chrono::seconds kNewClientGrace{1};

using SteadyTime = std::chrono::steady_clock::time_point;

std::string ErrorBody(std::string_view message) {
  std::string out = R"({"error":")";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  out += "\"}";
  return out;
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  class Session;

  Impl(asio::io_context& io_context, HttpLimits l)
      : io(io_context), acceptor(io_context), retry(io_context), room(io_context), limits(l) {}

  void Accept();
  // At limits.max_connections: waits for a client to come, then makes room.
  void WaitForClient();
  // At limits.max_connections with a client waiting: closes the connection
  // idle longest, if one is (its end lets the client in).
  void MakeRoom();

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // backs off when accept fails (e.g. out of fds)
  asio::steady_timer room;   // MakeRoom() again once a new connection may go
  HttpHandler handler;
  HttpHeaderCheck header_check;
  HttpBodyLimit body_limit;
  HttpLimits limits;
  bool stopped = false;
  // Past limits.max_connections the acceptor waits for a client
  // (kWaitingForClient); once one waits (kClientWaits) an idle connection
  // is closed to let it in (kRoomMade), now or as soon as one is idle. A
  // session's end then starts accepting again.
  enum class Door { kAccepting, kWaitingForClient, kClientWaits, kRoomMade };
  Door door = Door::kAccepting;
  std::uint64_t idle_closed = 0;  // connections closed to let a client in
  std::optional<std::chrono::steady_clock::time_point> warned_full;  // (said so then)
  std::unordered_set<Session*> sessions;
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Impl> server)
      : stream_(std::move(socket)),
        buffer_(server->limits.max_header + kFramingBytes),
        server_(std::move(server)) {
    server_->sessions.insert(this);
  }
  ~Session() {
    server_->sessions.erase(this);
    // (kWaitingForClient: the acceptor's wait sees there is room.)
    if (server_->door == Door::kClientWaits || server_->door == Door::kRoomMade) {
      server_->door = Door::kAccepting;
      server_->Accept();
    }
  }

  // Whether the connection waits for a request's first byte (none was in
  // the buffer when its read began, none has come since). Not one that
  // drains after an error answer (see ClosableFrom()).
  bool Idle() const {
    return !closed_idle_ && awaiting_header_ && began_empty_ && buffer_.size() == 0;
  }
  // Since when it has been idle (Idle()).
  SteadyTime IdleSince() const { return idle_since_; }
  // From when it may be closed to make room for a new client (RFC 9112
  // 9.6: a client reopens a keep-alive connection the server closed while
  // idle): waiting for a request, at once if it was answered before, else
  // once it has had kNewClientGrace to send its first. nullopt: not now nor
  // later while it stays as it is (busy, or draining: closed with the
  // client's bytes unread, the kernel would reset it and lose the error
  // answer; it ends within kLinger anyway).
  std::optional<SteadyTime> ClosableFrom() const {
    if (!Idle()) return std::nullopt;
    return answered_before_ ? idle_since_ : idle_since_ + kNewClientGrace;
  }

  // Closes an idle connection now (see Shutdown()). A request whose bytes
  // came meanwhile (read, but not yet handed to OnHeader) is dropped
  // unanswered, as if it came after the close: never run with its answer lost.
  void CloseIdle() {
    closed_idle_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  void Read() {
    if (server_->stopped) return Close();
    parser_.emplace();
    head_ = false;
    // The body's limit is set on the header, after the header check: a
    // stranger's request is answered 401 whatever its length. (Not
    // boost::none, which Beast 1.74 takes as less than any length.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(static_cast<std::uint32_t>(server_->limits.max_header));
    stream_.expires_after(server_->limits.request_timeout);
    reading_ = true;
    awaiting_header_ = true;
    // (A pipelined request already in the buffer is parsed as the read
    // starts, and leaves the buffer empty.)
    began_empty_ = buffer_.size() == 0;
    idle_since_ = std::chrono::steady_clock::now();
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
    // A client waits for room: this connection, now idle, makes it.
    if (server_->door == Door::kClientWaits && answered_before_ && began_empty_) {
      server_->MakeRoom();
    }
  }

  // Called when the server stops: an idle connection closes now, a busy one
  // after its answer is written.
  void Shutdown() {
    if (reading_) CloseIdle();
  }

 private:
  // The header is in: a request refused on it (a coding, the header check,
  // a Content-Length over its limit) is answered now, unread; a client that
  // asks before it sends its body (`Expect: 100-continue`, as
  // curl does past 1 KiB) is told to go on, else it would wait a second
  // for the answer it asked for.
  void OnHeader(beast::error_code ec) {
    awaiting_header_ = false;
    if (closed_idle_) return Close();
    if (ec || parser_->is_done()) return OnRead(ec);
    const auto& req = parser_->get();
    // What is refused on its headers is refused before its body is read
    // (or asked for, by a 100 Continue); the body is drained, then the
    // connection closes.
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    if (auto refused = RefusedCoding(req)) {
      reading_ = false;
      return Reply(refused->first, refused->second);
    }
    if (server_->header_check) {
      if (auto refused = server_->header_check(RequestOf(req))) {
        reading_ = false;
        keep_alive_ = false;
        linger_ = true;
        return Write(std::move(*refused));
      }
    }
    body_limit_ = server_->limits.max_body;
    if (server_->body_limit) {
      body_limit_ = std::min(body_limit_, server_->body_limit(RequestOf(req)));
    }
    // (Beast checks a Content-Length against the limit with the header,
    // now read, and a chunked body as it comes.)
    if (parser_->content_length().value_or(0) > body_limit_) {
      reading_ = false;
      return Reply(413, "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    parser_->body_limit(body_limit_);
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *go_on,
                        [self = shared_from_this(), go_on](beast::error_code wec, std::size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    if (closed_idle_) return Close();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor || ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Reply(413, "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return Reply(
          431, "request headers exceed " + std::to_string(server_->limits.max_header) + " bytes");
    }
    if (ec == http::error::buffer_overflow) {
      return Reply(400, "a chunk's size line or the trailers exceed " +
                            std::to_string(buffer_.max_size()) + " bytes");
    }
    if (ec) return Reply(400, "malformed HTTP request: " + ec.message());

    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    if (auto refused = RefusedCoding(req)) return Reply(refused->first, refused->second);
    HttpRequest request = RequestOf(req);
    request.body = std::move(req.body());
    stream_.expires_never();
    answered_ = false;
    auto respond = [self = shared_from_this()](HttpResponse response) {
      if (self->answered_) return;
      self->answered_ = true;
      self->Write(std::move(response));
    };
    try {
      server_->handler(std::move(request), respond);
    } catch (const std::exception& e) {
      respond(HttpResponse{500, ErrorBody(std::string("internal error: ") + e.what())});
    }
  }

  // The request as the handler sees it, but for its body.
  static HttpRequest RequestOf(const http::request<http::string_body>& req) {
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.authorization = std::string(req[http::field::authorization]);
    request.host = std::string(req[http::field::host]);
    // Every line of it, joined as one list: a page may send its own line,
    // and a proxy add another.
    for (auto [it, end] = req.equal_range("X-Forwarded-Host"); it != end; ++it) {
      if (!request.forwarded_host.empty()) request.forwarded_host += ", ";
      request.forwarded_host += std::string(it->value());
    }
    request.origin = std::string(req[http::field::origin]);
    request.fetch_site = std::string(req["Sec-Fetch-Site"]);
    return request;
  }

  // Codings the server does not decode, which RFC 9112 (6.1, 6.3) and
  // RFC 9110 (8.4) say to refuse rather than read the body as plain bytes:
  // Beast treats a request with a Transfer-Encoding that does not end in
  // chunked as having no body, so its bytes would be read as the next
  // request. The connection closes after the answer.
  static std::optional<std::pair<int, std::string>> RefusedCoding(
      const http::request<http::string_body>& req) {
    const auto lower = [](beast::string_view s) {
      std::string out;
      for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return out;
    };
    if (auto te = req.find(http::field::transfer_encoding); te != req.end()) {
      std::vector<std::string> codings;
      for (auto coding : http::token_list(te->value())) codings.push_back(lower(coding));
      if (codings.empty() || codings.back() != "chunked") {
        return std::pair{
            400, "Transfer-Encoding must end with chunked, got '" + std::string(te->value()) + "'"};
      }
      for (const std::string& c : codings) {
        if (c != "chunked") {
          return std::pair{501, "transfer coding '" + c + "' is not supported (only chunked)"};
        }
      }
    }
    if (auto ce = req.find(http::field::content_encoding); ce != req.end()) {
      for (auto coding : http::token_list(ce->value())) {
        if (lower(coding) != "identity") {
          return std::pair{415, "Content-Encoding '" + std::string(ce->value()) +
                                    "' is not supported: send the body uncompressed"};
        }
      }
    }
    return std::nullopt;
  }

  // An error answer; then the connection closes, once what the client
  // still sends is drained (kLinger).
  void Reply(int status, std::string_view message) {
    keep_alive_ = false;
    linger_ = true;
    HttpResponse r{status, ErrorBody(message)};
    if (status == 415) r.headers.emplace_back("Accept-Encoding", "identity");
    Write(std::move(r));
  }

  void Write(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_ == 0 ? 11 : version_);
    res->set(http::field::server, "touchpointd");
    res->set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive_ && !server_->stopped);
    res->body() = std::move(r.body);
    res->prepare_payload();
    // The answer to HEAD is GET's without its body (RFC 9110 9.3.2): the
    // Content-Length stays, the bytes go.
    if (head_) res->body().clear();
    answered_before_ = true;
    stream_.expires_after(server_->limits.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (!ec && self->linger_) return self->Drain();
                        if (ec || !res->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  // Sends the end of the stream, then reads and drops what comes until the
  // client closes too, or kLinger passes, or the server stops.
  void Drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);  // one deadline for the whole drain
    dropped_.resize(64 * 1024);
    reading_ = true;  // Shutdown() closes it at once
    DrainSome();
  }
  void DrainSome() {
    if (server_->stopped) return Close();
    stream_.async_read_some(asio::buffer(dropped_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->Close();
                              self->DrainSome();
                            });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Impl> server_;
  unsigned version_ = 11;
  std::size_t body_limit_ = 0;  // this request's
  bool keep_alive_ = false;
  bool head_ = false;
  bool reading_ = false;
  bool answered_ = true;
  bool awaiting_header_ = false;  // in async_read_header
  bool began_empty_ = false;      // its buffer empty when the read began
  bool answered_before_ = false;  // an answer was written on it
  bool closed_idle_ = false;      // by CloseIdle()
  SteadyTime idle_since_;
  bool linger_ = false;        // an error answer: Drain() after it
  std::vector<char> dropped_;  // what Drain() reads
};

void HttpServer::Impl::Accept() {
  if (stopped) return;
  acceptor.async_accept(io, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors or similar: try again shortly instead of
      // spinning; established connections keep being served.
      self->retry.expires_after(std::chrono::milliseconds(100));
      self->retry.async_wait([self](beast::error_code wait_ec) {
        if (!wait_ec) self->Accept();
      });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), self)->Read();
    if (self->limits.max_connections > 0 && self->sessions.size() >= self->limits.max_connections) {
      return self->WaitForClient();
    }
    self->Accept();
  });
}

void HttpServer::Impl::WaitForClient() {
  door = Door::kWaitingForClient;
  acceptor.async_wait(tcp::acceptor::wait_read, [self = shared_from_this()](beast::error_code ec) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      // As a failed accept: wait again shortly (the door still waits, so a
      // session's end leaves the accepting to this).
      self->retry.expires_after(std::chrono::milliseconds(100));
      self->retry.async_wait([self](beast::error_code retry_ec) {
        if (!retry_ec) self->WaitForClient();
      });
      return;
    }
    if (self->sessions.size() < self->limits.max_connections) {
      self->door = Door::kAccepting;
      return self->Accept();
    }
    self->door = Door::kClientWaits;
    self->MakeRoom();
  });
}

void HttpServer::Impl::MakeRoom() {
  const SteadyTime now = std::chrono::steady_clock::now();
  Session* oldest = nullptr;
  std::optional<SteadyTime> next;  // when a new connection may go
  for (Session* s : sessions) {
    const auto from = s->ClosableFrom();
    if (!from) continue;
    if (*from > now) {
      if (!next || *from < *next) next = *from;
    } else if (!oldest || s->IdleSince() < oldest->IdleSince()) {
      oldest = s;
    }
  }
  if (oldest) {
    ++idle_closed;
    door = Door::kRoomMade;
    // (Its end, once its read is aborted, accepts the client.)
    return oldest->CloseIdle();
  }
  if (next) {
    room.expires_at(*next);
    room.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->stopped && self->door == Door::kClientWaits) self->MakeRoom();
    });
    return;
  }
  // Every connection is reading or answering a request, or draining after
  // an error answer: the client waits until one ends or idles. At most
  // once a minute: while clients wait, each close lets one in and it fills
  // again.
  if (!warned_full || now - *warned_full >= std::chrono::minutes(1)) {
    warned_full = now;
    spdlog::warn(
        "http: {} connections open, the most http.max_connections allows, all busy with a "
        "request or closing after an error answer: new ones wait until one ends",
        sessions.size());
  }
}

HttpServer::HttpServer(asio::io_context& io, HttpLimits limits)
    : impl_(std::make_shared<Impl>(io, limits)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Listen(std::string_view host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string_view::npos) return Status::Error("listen address must be HOST:PORT");
  std::string host(host_port.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const auto port_text = host_port.substr(colon + 1);
  if (std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ptr !=
          port_text.data() + port_text.size() ||
      port > 65535) {
    return Status::Error("invalid port in listen address " + std::string(host_port));
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::Error("listen address " + std::string(host_port) +
                         ": not an IP address (use e.g. 127.0.0.1 or ::1)");
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& acceptor = impl_->acceptor;
  auto fail = [&](const char* what) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return Status::Error(std::string("cannot ") + what + " " + std::string(host_port) + ": " +
                         ec.message());
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail("open a socket for");
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail("configure");
  if (acceptor.bind(endpoint, ec)) return fail("listen on");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
  return Status::Ok();
}

void HttpServer::SetHeaderCheck(HttpHeaderCheck check) { impl_->header_check = std::move(check); }

void HttpServer::SetBodyLimit(HttpBodyLimit limit) { impl_->body_limit = std::move(limit); }

void HttpServer::Serve(HttpHandler handler) {
  if (impl_->handler) return;
  impl_->handler = std::move(handler);
  impl_->Accept();
}

std::size_t HttpServer::Connections() const { return impl_->sessions.size(); }

std::size_t HttpServer::MaxConnections() const { return impl_->limits.max_connections; }

std::size_t HttpServer::IdleConnections() const {
  return static_cast<std::size_t>(std::count_if(impl_->sessions.begin(), impl_->sessions.end(),
                                                [](const Impl::Session* s) { return s->Idle(); }));
}

std::uint64_t HttpServer::IdleClosed() const { return impl_->idle_closed; }

std::string HttpServer::LocalAddress() const {
  beast::error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  if (ec) return {};
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

void HttpServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->retry.cancel();
  impl_->room.cancel();
  // Copy: closing may not destroy sessions synchronously, but be safe.
  std::vector<Impl::Session*> sessions(impl_->sessions.begin(), impl_->sessions.end());
  for (auto* s : sessions) s->Shutdown();
}

}  // namespace tp
