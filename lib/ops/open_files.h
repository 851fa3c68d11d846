// The process's limit on open files. Every client connection, every
// request waiting for the database (IngestBatcher::kMaxWaitingRequests),
// every sink connection and PostgreSQL session is a descriptor; systemd
// starts services with a soft limit of 1024 and asks those that need more
// to raise it to the hard limit themselves (which is what this does: the
// daemon uses epoll and poll, never select, so descriptors past 1024 are
// safe).
#pragma once

#include <cstdint>

namespace tp {

struct OpenFileLimit {
  std::uint64_t before = 0, now = 0;  // the soft limit
};

// Raises the soft limit to the hard one; `now` is `before` if it could not.
OpenFileLimit RaiseOpenFileLimit();

}  // namespace tp
