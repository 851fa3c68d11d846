// What /proc/PID/stat (or /proc/PID/task/TID/stat) says of a process or a
// thread: its parent, the CPU it has used and its minor page faults. For the daemon's CPU per
// touchpoint (harness.h) and the PostgreSQL server's (server_cpu.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tp::e2e {

struct ProcStat {
  long ppid = 0;
  double cpu_seconds = 0;         // user + system
  std::int64_t minor_faults = 0;  // pages mapped in without a read
};

// Nullopt once the process has gone.
std::optional<ProcStat> ReadProcStat(const std::string& path);

}  // namespace tp::e2e
