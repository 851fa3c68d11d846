// The embedded queues' routes (docs/queues.md): POST /v1/queues/{queue}/lease
// and /ack. Where the store has QueueJobs (PostgreSQL), a lease and an ack
// run there, off the loop; otherwise a lease is taken on the loop, and an
// ack made there. A lease's events are made, and its answer written, on the
// store reader's thread; every answer goes out from the loop.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <functional>
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
  // `jobs` may be null.
  QueueRoutes(const RouteContext& context, boost::asio::io_context& io, QueueStore& queues,
              LeasedEvents& events, QueueJobs* jobs)
      : context_(context), io_(io), queues_(queues), events_(events), jobs_(jobs) {}

  void AddTo(Router& router);

 private:
  bool IsQueue(std::string_view name) const;
  void Lease(const std::string& queue, const std::string& body, HttpRespond respond);
  void Ack(const std::string& queue, const std::string& body, HttpRespond respond);
  // A job's `done`, for another thread: `make` turns its result into the
  // answer there; that answer, or the store's failure answer naming
  // `what`, goes out from the loop (kept running until then).
  template <typename T, typename Make>
  std::function<void(StatusOr<T>)> AnswerOnLoop(HttpRespond respond, std::string what, Make make);

  const RouteContext& context_;
  boost::asio::io_context& io_;
  QueueStore& queues_;
  LeasedEvents& events_;
  QueueJobs* jobs_;
};

}  // namespace tp::api
