// What /proc/PID/stat (or /proc/PID/task/TID/stat) says of a process or a
// thread: its parent and the CPU it has used. For the daemon's CPU per
// touchpoint (harness.h) and the PostgreSQL server's (server_cpu.h).
#pragma once

#include <optional>
#include <string>

namespace tp::e2e {

struct ProcStat {
  long ppid = 0;
  double cpu_seconds = 0;  // user + system
};

// Nullopt once the process has gone.
std::optional<ProcStat> ReadProcStat(const std::string& path);

}  // namespace tp::e2e
