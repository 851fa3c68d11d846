// The embedded queues' routes (docs/queues.md): POST /v1/queues/{queue}/lease
// and /ack. A lease is taken on the loop; its events are made, and the
// answer written, on the store reader's thread, and the answer goes out from
// the loop again.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <string>

#include "api/route_context.h"
#include "api/router.h"
#include "store/queue_store.h"

namespace tp::api {

inline constexpr int kDefaultLeaseMax = 10;
inline constexpr int kMaxLeaseMax = 1000;
inline constexpr double kDefaultVisibilityS = 30;
inline constexpr double kMaxVisibilityS = 12 * 3600;
inline constexpr std::size_t kMaxReceipts = 10'000;

class QueueRoutes {
 public:
  QueueRoutes(const RouteContext& context, boost::asio::io_context& io, QueueStore& queues,
              LeasedEvents& events)
      : context_(context), io_(io), queues_(queues), events_(events) {}

  void AddTo(Router& router);

 private:
  bool IsQueue(std::string_view name) const;
  void Lease(const std::string& queue, const std::string& body, HttpRespond respond);
  HttpResponse Ack(const std::string& queue, const std::string& body);

  const RouteContext& context_;
  boost::asio::io_context& io_;
  QueueStore& queues_;
  LeasedEvents& events_;
};

}  // namespace tp::api
