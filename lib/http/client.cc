// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <vector>

#include "http/client.h"

namespace tp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

}  // namespace

struct HttpClient::Impl {
  std::string host;
  std::string port;
  std::string prefix;  // path prefix of the base URL, without a trailing slash
  std::string authorization;
  Millis timeout = std::chrono::seconds(30);
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the io_context until the started operation completes.
  void Run() {
    io.restart();
    io.run();
  }

  beast::error_code Connect() {
    stream.emplace(io);
    beast::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return ec;
    stream->expires_after(timeout);
    stream->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (!ec) stream->socket().set_option(tcp::no_delay(true), ec);
    return ec;
  }

  beast::error_code Exchange(http::request<http::string_body>& req,
                             http::response<http::string_body>& res) {
    beast::error_code ec;
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    Run();
    if (ec) return ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1024ULL * 1024 * 1024);
    stream->expires_after(timeout);
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    Run();
    if (!ec) res = parser.release();
    return ec;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(std::string_view base_url) {
  constexpr std::string_view kScheme = "http://";
  if (base_url.substr(0, kScheme.size()) != kScheme) {
    return Status::Error("URL must start with http://, got '" + std::string(base_url) + "'");
  }
  std::string_view rest = base_url.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  auto impl = std::make_unique<Impl>();
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos || authority.back() == ']') {
    impl->host = std::string(authority);
    impl->port = "80";
  } else {
    impl->host = std::string(authority.substr(0, colon));
    impl->port = std::string(authority.substr(colon + 1));
  }
  if (impl->host.size() >= 2 && impl->host.front() == '[') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  if (impl->host.empty() || impl->port.empty()) {
    return Status::Error("URL has no host or port: '" + std::string(base_url) + "'");
  }
  impl->prefix = std::string(prefix);
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

void HttpClient::set_timeout(Millis timeout) { impl_->timeout = timeout; }

void HttpClient::set_bearer_token(std::string token) {
  impl_->authorization = token.empty() ? std::string() : "Bearer " + token;
}

StatusOr<HttpResult> HttpClient::Request(std::string_view method, std::string_view target,
                                         std::string_view body, std::string_view content_type) {
  Impl& m = *impl_;
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(m.prefix + std::string(target));
  req.version(11);
  // (An IPv6 address in brackets, as in the URL: RFC 9110 7.2.)
  const bool v6 = m.host.find(':') != std::string::npos;
  req.set(http::field::host, (v6 ? "[" + m.host + "]" : m.host) + ":" + m.port);
  req.set(http::field::user_agent, "touchpointctl");
  if (!m.authorization.empty()) req.set(http::field::authorization, m.authorization);
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    req.body() = std::string(body);
  }
  req.keep_alive(true);
  req.prepare_payload();

  http::response<http::string_body> res;
  beast::error_code ec;
  // A reused connection may have been closed by the daemon while idle: retry
  // once on a fresh one. A fresh connection's failure is final, and so is a
  // timeout: the daemon had the request and did not answer in time, so
  // sending it again would send it twice and wait twice as long.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = m.stream.has_value();
    if (!reused) {
      m.buffer.clear();
      if ((ec = m.Connect())) {
        m.stream.reset();
        return Status::Error("cannot connect to " + m.host + ":" + m.port + ": " + ec.message());
      }
    }
    ec = m.Exchange(req, res);
    if (!ec) break;
    m.stream.reset();
    if (!reused || ec == beast::error::timeout) break;
  }
  if (ec) {
    return Status::Error("no answer from " + m.host + ":" + m.port + ": " +
                         (ec == beast::error::timeout ? std::string("timed out") : ec.message()));
  }
  if (!res.keep_alive()) m.stream.reset();
  return HttpResult{static_cast<int>(res.result_int()), std::move(res.body()),
                    std::string(res[http::field::content_type]),
                    std::string(res[http::field::retry_after])};
}

}  // namespace tp
