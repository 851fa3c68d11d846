// An asynchronous HTTP/1.1 client for one origin (scheme, host, port), on
// the caller's io_context: no thread per request, no blocking call. Plain
// HTTP or HTTPS (certificate and host name verified unless told otherwise).
// Connections are kept alive and reused; the caller bounds how many requests
// are in flight, and so how many connections are open.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "core/url.h"

namespace boost::asio {
class io_context;
}

namespace tp {

struct OutgoingRequest {
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// What came back, or why nothing did.
struct Exchange {
  int status = 0;           // the HTTP status; 0 when there was no response
  std::string error;        // why there was no response (status 0)
  std::string retry_after;  // the Retry-After header, if any
  std::string body;         // the first bytes of the response body
  Millis latency{0};        // from the send (or connect) to the last byte
};

struct AsyncHttpClientOptions {
  Millis timeout{10'000};  // per request: connect, handshake, write and read
  std::string ca_pem;      // PEM CAs to trust instead of the system's
  bool tls_verify = true;
  std::string user_agent = "touchpoint";
};

class AsyncHttpClient {
 public:
  // `url` is http or https; its target is where requests are POSTed. Fails
  // when the TLS setup does (a CA file OpenSSL cannot load).
  static StatusOr<std::unique_ptr<AsyncHttpClient>> Create(boost::asio::io_context& io,
                                                           const Url& url,
                                                           const AsyncHttpClientOptions& options);
  ~AsyncHttpClient();
  AsyncHttpClient(const AsyncHttpClient&) = delete;
  AsyncHttpClient& operator=(const AsyncHttpClient&) = delete;

  // POSTs `request` on an idle connection, or a new one. `done` runs on the
  // io_context exactly once. A reused connection the server has closed
  // meanwhile is replaced transparently (once) before anything is judged.
  void Post(OutgoingRequest request, std::function<void(Exchange)> done);
  // Closes idle connections; requests in flight finish (or time out).
  void CloseIdle();

  struct Shared;  // the implementation's, shared with its connections

 private:
  explicit AsyncHttpClient(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace tp
