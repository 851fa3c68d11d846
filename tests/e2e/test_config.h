// The config the end-to-end tests start daemons on, built rather than
// pasted into each file: UTC, misfire_grace 1h, a product "daily" lasting
// 15 days, one cadence "trust" triggered by purchases of daily, a queue
// sink "outbox". A test changes what it is about and leaves the rest.
//
//   testing::TestConfig().Step("1s", "soon").Step("1d", "later").Yaml()
#pragma once

#include <string>
#include <vector>

namespace tp::testing {

class TestConfig {
 public:
  // A top-level key as YAML, e.g. "database_max_size: 1MiB".
  TestConfig& Top(std::string line) {
    top_.push_back(std::move(line));
    return *this;
  }
  // The config's zone (UTC by default).
  TestConfig& Timezone(std::string zone) {
    timezone_ = std::move(zone);
    return *this;
  }
  TestConfig& MisfireGrace(std::string duration) {
    misfire_grace_ = std::move(duration);
    return *this;
  }
  // A tier as a YAML flow mapping, e.g. "{name: novice}"; none by default
  // (the built-in one).
  TestConfig& Tier(std::string item) {
    tiers_.push_back(std::move(item));
    return *this;
  }
  TestConfig& Cadence(std::string name) {
    cadence_ = std::move(name);
    return *this;
  }
  TestConfig& CancelOnRepurchase() {
    cancel_on_repurchase_ = true;
    return *this;
  }
  // A step of the cadence: {after: AFTER, topic: TOPIC}.
  TestConfig& Step(const std::string& after, const std::string& topic) {
    return StepYaml("{after: " + after + ", topic: " + topic + "}");
  }
  // A step as a YAML flow mapping.
  TestConfig& StepYaml(std::string item) {
    steps_.push_back(std::move(item));
    return *this;
  }
  // The sinks instead of the queue "outbox": YAML list items, each line
  // indented two spaces ("  - {name: crm, type: webhook, ...}").
  TestConfig& Sinks(std::string items) {
    sinks_ = std::move(items);
    return *this;
  }

  std::string Yaml() const {
    std::string y = "version: 1\n";
    for (const std::string& line : top_) y += line + "\n";
    y += "timezone: " + timezone_ + "\nmisfire_grace: " + misfire_grace_ +
         "\nproducts:\n  daily: {supply_days: 15}\n";
    if (!tiers_.empty()) {
      y += "tiers:\n";
      for (const std::string& t : tiers_) y += "  - " + t + "\n";
    }
    y += "cadences:\n  - name: " + cadence_ + "\n    trigger: purchase\n    products: [daily]\n";
    if (cancel_on_repurchase_) y += "    cancel_on_repurchase: true\n";
    y += "    steps:\n";
    for (const std::string& s : steps_) y += "      - " + s + "\n";
    y += "sinks:\n" + sinks_;
    if (!sinks_.empty() && sinks_.back() != '\n') y += "\n";
    return y;
  }

 private:
  std::vector<std::string> top_;
  std::string timezone_ = "UTC";
  std::string misfire_grace_ = "1h";
  std::vector<std::string> tiers_;
  std::string cadence_ = "trust";
  bool cancel_on_repurchase_ = false;
  std::vector<std::string> steps_;
  std::string sinks_ = "  - {name: outbox, type: queue}\n";
};

}  // namespace tp::testing
