#include "server_cpu.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proc.h"

namespace tp::e2e {
namespace {

// A process's context switches so far, voluntary and not.
std::int64_t ContextSwitches(const std::string& status) {
  std::ifstream in(status);
  std::string line;
  std::int64_t all = 0;
  while (std::getline(in, line)) {
    long long n = 0;
    if (std::sscanf(line.c_str(), "voluntary_ctxt_switches: %lld", &n) == 1 ||
        std::sscanf(line.c_str(), "nonvoluntary_ctxt_switches: %lld", &n) == 1) {
      all += n;
    }
  }
  return all;
}

}  // namespace

std::optional<ServerCpu> ServerCpu::Find(const std::string& url) {
  try {
    auto conn = pg::Connection::Open(url + "/postgres", "touchpoint-bench-cpu");
    const long backend = static_cast<long>(conn->Exec("SELECT pg_backend_pid()").Int64(0, 0));
    // This session's server process, if it is on this machine: its
    // parent is the server's postmaster.
    const auto stat = ReadProcStat("/proc/" + std::to_string(backend) + "/stat");
    if (!stat) return std::nullopt;
    return ServerCpu(std::move(conn), stat->ppid);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

ServerCpu::Reading ServerCpu::Read() {
  std::map<long, std::string> groups;
  pg::Result r = conn_->Exec(
      "SELECT pid, COALESCE(NULLIF(application_name, ''), backend_type) FROM pg_stat_activity");
  for (int i = 0; i < r.rows(); ++i) {
    groups[static_cast<long>(r.Int64(i, 0))] = std::string(r.Text(i, 1));
  }
  Reading reading;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const auto stat = ReadProcStat(entry.path().string() + "/stat");
    if (!stat || stat->ppid != postmaster_) continue;
    const long pid = std::stol(name);
    auto group = groups.find(pid);
    reading[pid] = {group == groups.end() ? "other" : group->second, stat->cpu_seconds,
                    stat->minor_faults, ContextSwitches(entry.path().string() + "/status")};
  }
  return reading;
}

std::optional<ServerCpu::Pages> ServerCpu::SharedMemoryPages() const {
  std::ifstream in("/proc/" + std::to_string(postmaster_) + "/smaps_rollup");
  if (!in) return std::nullopt;
  Pages pages = Pages::kSmall;
  std::string line;
  while (std::getline(in, line)) {
    long kb = 0;
    if ((std::sscanf(line.c_str(), "Shared_Hugetlb: %ld kB", &kb) == 1 ||
         std::sscanf(line.c_str(), "Private_Hugetlb: %ld kB", &kb) == 1) &&
        kb > 0) {
      return Pages::kHuge;
    }
    if (std::sscanf(line.c_str(), "ShmemPmdMapped: %ld kB", &kb) == 1 && kb > 0) {
      pages = Pages::kTransparentHuge;
    }
  }
  return pages;
}

std::string ServerCpu::PerTouchpoint(const Reading& before, const Reading& after,
                                     std::int64_t touchpoints) {
  std::map<std::string, double> seconds;
  double all = 0;
  std::int64_t faults = 0, switches = 0;
  for (const auto& [pid, process] : after) {
    auto was = before.find(pid);
    const bool same = was != before.end() && was->second.group == process.group;
    const double used = process.cpu_seconds - (same ? was->second.cpu_seconds : 0);
    seconds[process.group] += used;
    all += used;
    faults += process.minor_faults - (same ? was->second.minor_faults : 0);
    switches += process.context_switches - (same ? was->second.context_switches : 0);
  }
  std::vector<std::pair<std::string, double>> sorted(seconds.begin(), seconds.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  const auto us = [&](double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", s * 1e6 / static_cast<double>(touchpoints));
    return std::string(text);
  };
  std::string out;
  for (const auto& [group, s] : sorted) {
    if (s <= 0) continue;
    out += (out.empty() ? "" : ", ") + group + " " + us(s);
  }
  const auto per = [&](std::int64_t n) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f",
                  static_cast<double>(n) / static_cast<double>(touchpoints));
    return std::string(text);
  };
  return out + " us; " + us(all) + " us in all; " + per(faults) + " minor faults, " +
         per(switches) + " context switches";
}

}  // namespace tp::e2e
