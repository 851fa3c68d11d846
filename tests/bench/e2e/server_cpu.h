// The CPU the PostgreSQL server spends for a figure, by session: each
// client session's server process under its application_name
// (touchpointd-fire, touchpointd-queues, touchpointd, ...), the server's
// own processes under their backend_type (walwriter, checkpointer,
// autovacuum worker, ...). Statement times (pg_stat_statements) count the
// waits; this counts the CPU, which is what two cores run out of.
//
// Read from /proc, so only for a server on this machine (the bench's own,
// or --pg-url's when it is local). A process that ended between two
// readings (an autovacuum worker's run) is not counted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pg/connection.h"

namespace tp::e2e {

class ServerCpu {
 public:
  struct Process {
    std::string group;
    double cpu_seconds = 0;
    std::int64_t minor_faults = 0;
    std::int64_t context_switches = 0;
  };
  using Reading = std::map<long, Process>;  // by process id

  // Nullopt when the server at `url` (postgresql://USER@HOST:PORT) is not
  // on this machine.
  static std::optional<ServerCpu> Find(const std::string& url);

  // Every server process's group and CPU so far.
  Reading Read();

  // How the server's shared memory is mapped: in huge pages (its
  // postmaster maps some hugetlb memory: vm.nr_hugepages), in transparent
  // huge pages (some of its shared memory is mapped 2 MB at a time:
  // /sys/kernel/mm/transparent_hugepage/shmem_enabled), or neither; nullopt
  // when this process may not read the postmaster's mappings (a server run
  // by another user). With neither, each server process maps the shared
  // buffers 4 kB at a time, and with three daemons' sessions the fire
  // figures cost the server a fifth to a third more CPU per touchpoint
  // (docs/benchmarks.md).
  enum class Pages : std::uint8_t { kSmall, kHuge, kTransparentHuge };
  std::optional<Pages> SharedMemoryPages() const;

  // "touchpointd-fire 21.3, touchpointd-queues 18.0, walwriter 0.4 us;
  // 40.1 us in all; 0.290 minor faults, 0.066 context switches": CPU per
  // touchpoint between two readings, by group, the largest first; then
  // the page faults and context switches of all the server's processes
  // per touchpoint (without huge pages, a process's first touch of each
  // 4 kB page of the shared buffers is a minor fault).
  static std::string PerTouchpoint(const Reading& before, const Reading& after,
                                   std::int64_t touchpoints);

 private:
  ServerCpu(std::unique_ptr<pg::Connection> conn, long postmaster)
      : conn_(std::move(conn)), postmaster_(postmaster) {}

  std::unique_ptr<pg::Connection> conn_;
  long postmaster_;
};

}  // namespace tp::e2e
