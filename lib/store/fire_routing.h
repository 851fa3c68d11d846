// Where a fired touchpoint goes: the sinks of its step (its own, else its
// cadence's) under the rules in force, as every backend's fire fans it
// out, with the names its row records and its history line. Internal to
// lib/store.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "store/values.h"

namespace tp {

class FireRouting {
 public:
  struct Route {
    std::string sink;
    Sink::Type type = Sink::Type::kQueue;
  };
  struct Routing {
    std::vector<Route> routes;
    std::string sinks;         // the names, comma-separated, as the row records them
    std::string fired_reason;  // e.g. "queued on outbox; handed to webhook crm"
  };

  // Which sinks each step's touchpoints go to from now on (a reload).
  void Set(const Rules& rules);
  // A cadence or step the rules no longer have goes nowhere. Valid until
  // the next Set().
  const Routing& Of(std::string_view cadence, std::string_view step) const;

 private:
  // Cadence name -> the sinks it routes to, and the history line of a fire;
  // and its steps that have sinks of their own, by id.
  struct CadenceRouting {
    Routing routing;
    std::vector<std::pair<std::string, Routing>> steps;
  };
  std::unordered_map<std::string, CadenceRouting, sql::StringHash, std::equal_to<>> routing_of_;
  const Routing no_routing_{{}, "", "fired; no sink to hand it to"};
};

}  // namespace tp
