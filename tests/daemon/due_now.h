// What the firing tests (fire_loop_test.cc, fire_thread_test.cc) share: a
// config whose touchpoints fire whatever the hour, and a way to run a
// loop until something has happened.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string_view>

namespace tp::testing {

// Two steps an hour apart, no send window and a day's misfire_grace: a
// purchase three hours ago has both due now, and they fire at once.
inline constexpr std::string_view kDueNowConfig = R"(version: 1
timezone: UTC
misfire_grace: 1d
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: a}
      - {after: 2h, topic: b}
)";

// Runs `io` until `done` or 10 s.
template <typename Done>
void RunLoopUntil(boost::asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
}

}  // namespace tp::testing
