// A blocking HTTP/1.1 client for touchpointctl and the tests: one keep-alive
// connection to one daemon, reconnected when the daemon closed it. Boost.Beast
// stays inside client.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"

namespace tp {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, if any
};

class HttpClient {
 public:
  // `base_url` is "http://HOST:PORT" (a trailing slash is fine).
  static StatusOr<std::unique_ptr<HttpClient>> Create(std::string_view base_url);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Connect, send and receive each within `timeout`.
  void set_timeout(Millis timeout);
  // Sends "Authorization: Bearer <token>" with every request (none if empty).
  void set_bearer_token(std::string token);

  // An error Status only when no HTTP answer came (connection refused,
  // timeout, reset); any HTTP status is a result.
  StatusOr<HttpResult> Request(std::string_view method, std::string_view target,
                               std::string_view body = {},
                               std::string_view content_type = "application/json");

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
