// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>
#include <type_traits>

#include "http/async_client.h"

namespace tp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kBodyKept = 512;
constexpr std::uint64_t kBodyLimit = 1 << 20;

using Request = http::request<http::string_body>;
using Done = std::function<void(Exchange)>;

std::string Seconds(Millis ms) {
  const auto whole = ms.count() / 1000, frac = ms.count() % 1000;
  return std::to_string(whole) + (frac != 0 ? "." + std::to_string(frac / 100) : "") + "s";
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

class Connection;

struct AsyncHttpClient::Shared {
  Shared(asio::io_context& io_context, Url u, AsyncHttpClientOptions o)
      : io(io_context), url(std::move(u)), options(std::move(o)) {}
  asio::io_context& io;
  Url url;
  AsyncHttpClientOptions options;
  std::optional<ssl::context> tls;  // https only
  std::vector<std::shared_ptr<Connection>> idle;
};

// One keep-alive connection; runs one request at a time.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual void Start(std::shared_ptr<Request> request, Done done) = 0;
  virtual void Close() = 0;
};

namespace {

template <bool kTls>
class ConnectionImpl final : public Connection {
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

 public:
  explicit ConnectionImpl(std::shared_ptr<AsyncHttpClient::Shared> shared)
      : shared_(std::move(shared)), resolver_(shared_->io), resolve_timer_(shared_->io) {}

  void Start(std::shared_ptr<Request> request, Done done) override {
    request_ = std::move(request);
    done_ = std::move(done);
    started_ = SteadyClock::now();
    deadline_ = started_ + shared_->options.timeout;
    if (stream_) {
      reused_ = true;
      Write();
    } else {
      reused_ = false;
      Resolve();
    }
  }

  void Close() override {
    if (!stream_) return;
    boost::system::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
    stream_.reset();
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(*stream_); }
  std::shared_ptr<ConnectionImpl> Self() {
    return std::static_pointer_cast<ConnectionImpl>(shared_from_this());
  }

  void Resolve() {
    const Url& url = shared_->url;
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([this, self = Self()](const boost::system::error_code& ec) {
      if (!ec) resolver_.cancel();
    });
    resolver_.async_resolve(
        url.host, std::to_string(url.port),
        [this, self = Self()](const boost::system::error_code& ec, tcp::resolver::results_type r) {
          resolve_timer_.cancel();
          if (ec) return Fail("resolve " + shared_->url.host, ec);
          Connect(std::move(r));
        });
  }

  void Connect(const tcp::resolver::results_type& endpoints) {
    if constexpr (kTls) {
      stream_.emplace(shared_->io, *shared_->tls);
    } else {
      stream_.emplace(shared_->io);
    }
    Lowest().expires_at(deadline_);
    Lowest().async_connect(endpoints, [this, self = Self()](const boost::system::error_code& ec,
                                                            const tcp::endpoint&) {
      if (ec) return Fail("connect " + shared_->url.Authority(), ec);
      boost::system::error_code ignored;
      Lowest().socket().set_option(tcp::no_delay(true), ignored);
      if constexpr (kTls) {
        Handshake();
      } else {
        Write();
      }
    });
  }

  void Handshake() {
    if constexpr (kTls) {
      const std::string& host = shared_->url.host;
      if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(stream_->native_handle(), host.c_str());
      if (shared_->options.tls_verify) {
        stream_->set_verify_mode(ssl::verify_peer);
        stream_->set_verify_callback(ssl::host_name_verification(host));
      } else {
        stream_->set_verify_mode(ssl::verify_none);
      }
      Lowest().expires_at(deadline_);
      stream_->async_handshake(ssl::stream_base::client,
                               [this, self = Self()](const boost::system::error_code& ec) {
                                 if (ec) return Fail("TLS handshake", ec);
                                 Write();
                               });
    }
  }

  void Write() {
    Lowest().expires_at(deadline_);
    http::async_write(*stream_, *request_,
                      [this, self = Self()](const boost::system::error_code& ec, std::size_t) {
                        if (ec) return Retry("send", ec);
                        Read();
                      });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    Lowest().expires_at(deadline_);
    http::async_read(*stream_, buffer_, *parser_,
                     [this, self = Self()](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return parser_->got_some() ? Fail("read", ec) : Retry("read", ec);
                       Finish();
                     });
  }

  // A reused connection may have been closed by the server while idle; that
  // is no verdict on the request, so it goes once more on a new connection.
  void Retry(const char* what, const boost::system::error_code& ec) {
    if (reused_ && ec != beast::error::timeout) {
      Close();
      buffer_.clear();
      reused_ = false;
      return Resolve();
    }
    Fail(what, ec);
  }

  void Fail(const std::string& what, const boost::system::error_code& ec) {
    Exchange ex;
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      ex.error = "timed out after " + Seconds(shared_->options.timeout) + " (" + what + ")";
    } else {
      ex.error = what + ": " + ec.message();
    }
    Close();
    buffer_.clear();
    Deliver(std::move(ex), false);
  }

  void Finish() {
    auto& res = parser_->get();
    Exchange ex;
    ex.status = static_cast<int>(res.result_int());
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      ex.retry_after = std::string(it->value());
    }
    ex.body = res.body().substr(0, kBodyKept);
    Deliver(std::move(ex), res.keep_alive());
  }

  void Deliver(Exchange ex, bool keep) {
    ex.latency = std::chrono::duration_cast<Millis>(SteadyClock::now() - started_);
    request_.reset();
    parser_.reset();
    Done done = std::move(done_);
    done_ = nullptr;
    if (keep) {
      shared_->idle.push_back(shared_from_this());
    } else {
      Close();
    }
    done(std::move(ex));
  }

  std::shared_ptr<AsyncHttpClient::Shared> shared_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::shared_ptr<Request> request_;
  Done done_;
  SteadyClock::time_point started_, deadline_;
  bool reused_ = false;
};

}  // namespace

AsyncHttpClient::AsyncHttpClient(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

AsyncHttpClient::~AsyncHttpClient() { CloseIdle(); }

StatusOr<std::unique_ptr<AsyncHttpClient>> AsyncHttpClient::Create(
    asio::io_context& io, const Url& url, const AsyncHttpClientOptions& options) {
  auto shared = std::make_shared<Shared>(io, url, options);
  if (url.scheme == "https") {
    try {
      shared->tls.emplace(ssl::context::tls_client);
      shared->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                               ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                               ssl::context::no_tlsv1_1);
      if (!options.ca_pem.empty()) {
        // Every certificate in the text (Asio reads them all).
        shared->tls->add_certificate_authority(asio::buffer(options.ca_pem));
      } else {
        shared->tls->set_default_verify_paths();
      }
    } catch (const std::exception& e) {
      return Status::Error("TLS setup for " + url.Authority() + ": " + e.what());
    }
  }
  return std::unique_ptr<AsyncHttpClient>(new AsyncHttpClient(std::move(shared)));
}

void AsyncHttpClient::Post(OutgoingRequest request, std::function<void(Exchange)> done) {
  auto req = std::make_shared<Request>(http::verb::post, shared_->url.target, 11);
  req->set(http::field::host, shared_->url.HostHeader());
  req->set(http::field::user_agent, shared_->options.user_agent);
  req->set(http::field::content_type, request.content_type);
  for (auto& [name, value] : request.headers) req->set(name, value);
  req->body() = std::move(request.body);
  req->keep_alive(true);
  req->prepare_payload();
  std::shared_ptr<Connection> conn;
  if (!shared_->idle.empty()) {
    conn = std::move(shared_->idle.back());
    shared_->idle.pop_back();
  } else if (shared_->tls) {
    conn = std::make_shared<ConnectionImpl<true>>(shared_);
  } else {
    conn = std::make_shared<ConnectionImpl<false>>(shared_);
  }
  conn->Start(std::move(req), std::move(done));
}

void AsyncHttpClient::CloseIdle() {
  for (auto& conn : shared_->idle) conn->Close();
  shared_->idle.clear();
}

}  // namespace tp
