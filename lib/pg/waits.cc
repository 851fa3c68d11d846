// How long the process's connections have waited for the server
// (Connection::LongestWait): each open connection is in one registry, and
// marks when its statement under way began to wait (Connection::Waiting),
// so a thread that is not the connection's owner can tell a server that
// stopped answering (the daemon's stall watch, daemon/database_watch.h).
#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "pg/connection.h"

namespace tp::pg {
namespace {

// The process's open connections.
std::mutex& OpenMutex() {
  static std::mutex m;
  return m;
}
std::unordered_set<const Connection*>& OpenConnections() {
  static std::unordered_set<const Connection*> open;
  return open;
}

std::int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Connection::Connection(pg_conn* conn) : conn_(conn) {
  const std::lock_guard<std::mutex> lock(OpenMutex());
  OpenConnections().insert(this);
}

Connection::~Connection() {
  {
    const std::lock_guard<std::mutex> lock(OpenMutex());
    OpenConnections().erase(this);
  }
  PQfinish(conn_);
}

Connection::Waiting::Waiting(Connection& c) : c_(c) {
  if (c_.waiting_depth_++ == 0 && c_.watched_) {
    c_.waiting_since_.store(SteadyNs(), std::memory_order_relaxed);
  }
}

Connection::Waiting::~Waiting() {
  if (--c_.waiting_depth_ == 0) c_.waiting_since_.store(0, std::memory_order_relaxed);
}

std::chrono::milliseconds Connection::LongestWait() {
  std::int64_t oldest = 0;
  {
    const std::lock_guard<std::mutex> lock(OpenMutex());
    for (const Connection* c : OpenConnections()) {
      const std::int64_t since = c->waiting_since_.load(std::memory_order_relaxed);
      if (since != 0 && (oldest == 0 || since < oldest)) oldest = since;
    }
  }
  if (oldest == 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(SteadyNs() - oldest));
}

}  // namespace tp::pg
