#include "config/rules.h"

namespace tp {
namespace {

template <typename T>
int IndexByName(const std::vector<T>& items, std::string_view name) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

std::string_view SinkTypeName(Sink::Type type) {
  switch (type) {
    case Sink::Type::kQueue:
      return "queue";
    case Sink::Type::kWebhook:
      return "webhook";
    case Sink::Type::kRedis:
      return "redis";
  }
  return "unknown";
}

int Rules::ProductIndex(std::string_view name) const { return IndexByName(products, name); }
int Rules::TierIndex(std::string_view name) const { return IndexByName(tiers, name); }
int Rules::CadenceIndex(std::string_view name) const { return IndexByName(cadences, name); }
int Rules::EngagementTypeIndex(std::string_view name) const {
  return IndexByName(engagement_types, name);
}

std::vector<int> Rules::SinksOf(const Cadence& cadence, const Step& step) const {
  if (!step.sinks.empty()) return step.sinks;
  if (!cadence.sinks.empty()) return cadence.sinks;
  std::vector<int> every(sinks.size());
  for (std::size_t i = 0; i < every.size(); ++i) every[i] = static_cast<int>(i);
  return every;
}

std::string Rules::SinkList(const std::vector<int>& indices) const {
  std::string out;
  for (int i : indices) {
    if (!out.empty()) out += ',';
    out += sinks[static_cast<std::size_t>(i)].name;
  }
  return out;
}

std::string_view PeriodName(FrequencyCap::Per per) {
  switch (per) {
    case FrequencyCap::Per::kDay:
      return "day";
    case FrequencyCap::Per::kWeek:
      return "week";
    case FrequencyCap::Per::kMonth:
      return "month";
  }
  return "day";
}

}  // namespace tp
