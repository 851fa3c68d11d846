// The end-to-end benchmark's options (e2e_bench.cc), from its command line.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace tp::e2e {

struct Options {
  std::string daemon;
  std::string example_config;
  std::int64_t purchases = 200'000;           // ingest
  std::int64_t touchpoints = 200'000;         // fire into the embedded queue
  std::int64_t webhooks = 100'000;            // webhook deliveries
  std::int64_t pending = 1'000'000;           // restart, RSS and size
  std::int64_t report_purchases = 1'000'000;  // the outcomes report's base (2 events each)
  int lateness_s = 20;                        // at 200 touchpoints/s
  int consumers = 2;                          // leasing and acking the fire figure's queue
  int rounds = 1;                             // each figure this many times, alternated
  std::string keep;                           // keep the work directory here
  std::set<std::string, std::less<>> only;    // the figures to run; empty = all
  bool quick = false;
  // --store postgres: each figure's database is a fresh one on the server
  // at pg_url (postgresql://USER@HOST:PORT), which the bench starts in its
  // work directory (tests/pg/cluster.sh) when none is given.
  bool postgres = false;
  std::string pg_url;
};
// The options from the command line; prints the usage and exits on --help
// (0) or on a mistake (1).
Options ParseOptions(int argc, char** argv);

}  // namespace tp::e2e
