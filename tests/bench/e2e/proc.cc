#include "proc.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tp::e2e {

std::optional<ProcStat> ReadProcStat(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  const std::size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 > line.size()) return std::nullopt;
  // The fields after the command's closing parenthesis, from the 3rd:
  // the parent is the 4th, minor faults the 10th, utime and stime the
  // 14th and 15th.
  std::istringstream in(line.substr(paren + 2));
  std::string field;
  ProcStat stat;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 4) stat.ppid = std::strtol(field.c_str(), nullptr, 10);
    if (i == 10) stat.minor_faults = std::strtoll(field.c_str(), nullptr, 10);
    if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
  }
  stat.cpu_seconds = ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return stat;
}

}  // namespace tp::e2e
