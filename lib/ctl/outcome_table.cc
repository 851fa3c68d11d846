#include "ctl/outcome_table.h"

#include <cstdio>
#include <string>

#include "ctl/table.h"

namespace tp {
namespace {

using Json = nlohmann::ordered_json;

std::string Count(const Json& v) {
  return v.is_number() ? std::to_string(v.get<long long>()) : "-";
}

std::string Percent(const Json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v.get<double>() * 100);
  return buf;
}

std::string Days(const Json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v.get<double>());
  return buf;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void PrintOutcomeReport(const Json& report, std::ostream& out) {
  const std::string by = report.value("by", "tier");
  const bool by_fires = by == "cadence" || by == "topic";
  out << "outcomes by " << by << ", " << (by_fires ? "touchpoints fired" : "purchases") << " from "
      << DisplayTime(report.value("from", ""), UtcZone()) << " to "
      << DisplayTime(report.value("to", ""), UtcZone()) << ", as of "
      << DisplayTime(report.value("as_of", ""), UtcZone()) << "\n";
  if (by_fires) {
    Table table({Upper(by), "FIRED", "ENGAGED", "ENGAGEMENT", "REPURCHASES", "REVENUE"});
    for (const Json& r : report["rows"]) {
      table.Add({r.value("key", ""), Count(r["fired"]), Count(r["engaged"]),
                 Percent(r["engagement_rate"]), Count(r["repurchases"]),
                 r["revenue"].is_number() ? DisplayAmount(r["revenue"].get<double>()) : "-"});
    }
    table.Print(out);
    return;
  }
  Table table({Upper(by), "PURCHASES", "OPEN", "TRUST", "TRUST RATE", "REPURCHASED",
               "REPURCHASE RATE", "MEDIAN DAYS"});
  for (const Json& r : report["rows"]) {
    table.Add({r.value("key", ""), Count(r["purchases"]), Count(r["open"]), Count(r["trust_built"]),
               Percent(r["trust_rate"]), Count(r["repurchased"]), Percent(r["repurchase_rate"]),
               Days(r["median_days_to_repurchase"])});
  }
  table.Print(out);
}

}  // namespace tp
