// How long the process's connections have waited for the server
// (Connection::LongestWait): each open connection is in one registry, and
// marks when its statement under way began to wait (Connection::Waiting),
// so a thread that is not the connection's owner can tell a server that
// stopped answering (the daemon's stall watch, daemon/database_watch.h),
// and cut loose what still waits for it when the daemon stops
// (Connection::CutWaiting).
#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/socket.h>
#include <unistd.h>

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

Connection::Connection(pg_conn* conn)
    : conn_(conn), socket_(::fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0)) {
  const std::lock_guard<std::mutex> lock(OpenMutex());
  OpenConnections().insert(this);
}

Connection::~Connection() {
  {
    const std::lock_guard<std::mutex> lock(OpenMutex());
    OpenConnections().erase(this);
  }
  PQfinish(conn_);
  if (socket_ >= 0) ::close(socket_);
}

Connection::Waiting::Waiting(Connection& c) : c_(c) {
  if (c_.waiting_depth_++ == 0) {
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
      if (!c->watched_.load(std::memory_order_relaxed)) continue;
      const std::int64_t since = c->waiting_since_.load(std::memory_order_relaxed);
      if (since != 0 && (oldest == 0 || since < oldest)) oldest = since;
    }
  }
  if (oldest == 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(SteadyNs() - oldest));
}

int Connection::CutWaiting(std::chrono::milliseconds waited) {
  const std::int64_t began_by =
      SteadyNs() - std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count();
  int cut = 0;
  // Under the registry's lock, on the connection's own copy of its socket
  // (closed only once the connection is out of the registry): even if
  // libpq has closed its descriptor meanwhile (a connection it found
  // lost), the number cannot have gone to another socket.
  const std::lock_guard<std::mutex> lock(OpenMutex());
  for (const Connection* c : OpenConnections()) {
    const std::int64_t since = c->waiting_since_.load(std::memory_order_relaxed);
    if (since != 0 && since <= began_by && c->socket_ >= 0 && !c->cut_.exchange(true) &&
        ::shutdown(c->socket_, SHUT_RDWR) == 0) {
      ++cut;
    }
  }
  return cut;
}

}  // namespace tp::pg
