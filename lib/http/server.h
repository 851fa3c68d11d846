// A small HTTP/1.1 server on the daemon's io_context (Boost.Beast, confined
// to server.cc). Requests are handed to one handler as plain values; the
// handler answers through a callback, now or later (after a group commit),
// always on the io_context's thread.
//
// Per connection: one request at a time (keep-alive, no pipelining), a body
// limit (413), a header limit (431), and one timeout for receiving a request
// or idling between requests, after which the connection is closed. A slow or
// stalled client costs one socket and never blocks another client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace boost::asio {
class io_context;
}

namespace tp {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string authorization;
  std::string body;
  // What a browser says of where the request comes from (api/v1_gate.h):
  // the Host, X-Forwarded-Host (a proxy's; several lines joined by ", "),
  // Origin and Sec-Fetch-Site headers, empty when not sent.
  std::string host = {};
  std::string forwarded_host = {};
  std::string origin = {};
  std::string fetch_site = {};
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Must be called exactly once; later calls are ignored.
using HttpRespond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, HttpRespond)>;
// Looks at a request before its body is read (`body` empty): the answer
// that refuses it, or nullopt to read the body and hand it on.
using HttpHeaderCheck = std::function<std::optional<HttpResponse>(const HttpRequest&)>;
// The largest body a request may have, looked at on its headers (`body`
// empty); HttpLimits::max_body caps it.
using HttpBodyLimit = std::function<std::size_t(const HttpRequest&)>;

struct HttpLimits {
  std::size_t max_body = 32 * 1024 * 1024;
  std::size_t max_header = 16 * 1024;
  Millis request_timeout = std::chrono::seconds(30);
  Millis write_timeout = std::chrono::seconds(30);
  // Connections served at once (0: no limit). At it, a new client gets the
  // place of the connection idle longest (waiting for a request's first
  // byte; a new connection once it has had a second to send one), which
  // is closed; if none is idle, it waits in the kernel's backlog until one
  // is, or one closes.
  std::size_t max_connections = 0;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on "HOST:PORT" (port 0 picks a free one); clients
  // that connect wait in the kernel's backlog until Serve(). The error says
  // what failed, e.g. the address is in use. Binding first lets a daemon
  // fail on a taken port before it touches anything else.
  Status Listen(std::string_view host_port);
  // Starts accepting, handing every request to `handler` (once).
  void Serve(HttpHandler handler);
  // Before Serve(): a request with a body that `check` refuses is answered
  // without its body being read (say, a missing token: a stranger's 32 MiB
  // is not read), and its connection closes. A request without a body goes
  // to the handler as before (which checks it there).
  void SetHeaderCheck(HttpHeaderCheck check);
  // Before Serve(): a request whose body is over `limit` (after the header
  // check) is answered 413, before its body is read where its length says
  // so, else as soon as it passes the limit; its connection closes.
  void SetBodyLimit(HttpBodyLimit limit);
  // Connections open now (answering or draining ones included), and the
  // most served at once (HttpLimits::max_connections).
  std::size_t Connections() const;
  std::size_t MaxConnections() const;
  // Of those, the idle ones: waiting for a request's first byte. A new
  // client at the most takes the place of the one idle longest.
  std::size_t IdleConnections() const;
  // Idle connections closed so far to let a new client in.
  std::uint64_t IdleClosed() const;
  // The bound address as "HOST:PORT".
  std::string LocalAddress() const;
  // Stops accepting and closes idle connections; a request being handled is
  // answered, then its connection closes.
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tp
