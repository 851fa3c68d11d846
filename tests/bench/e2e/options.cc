// The end-to-end benchmark's command line (options.h).
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "harness.h"

namespace tp::e2e {
namespace {

std::int64_t Count(const char* flag, const char* value) {
  char* end = nullptr;
  const long long n = std::strtoll(value, &end, 10);
  if (end == value || *end != '\0' || n < 1) Fail(std::string(flag) + " needs a positive count");
  return n;
}

const char kUsage[] =
    "usage: touchpoint_e2e_bench --daemon PATH [--config EXAMPLE.yaml] [--purchases N]\n"
    "         [--touchpoints N] [--consumers N] [--webhooks N] [--pending N] [--lateness-s S]\n"
    "         [--report-purchases N] [--quick]"
    " [--only ingest,fire,caps,lateness,webhook,pending,events,fire3] [--keep DIR]\n"
    "         [--rounds N] [--store sqlite|postgres [--pg-url postgresql://USER@HOST:PORT]]\n"
    "  --store postgres runs ingest, fire, fire3 (three daemons) and lateness on\n"
    "  PostgreSQL: on the server at --pg-url, or one started in the work directory;\n"
    "  pending (table and index sizes, WAL, VACUUM) when --only names it.\n"
    "  --rounds N runs the figures N times, each round starting one figure later,\n"
    "  and with fire and fire3 both run, sums up three daemons' rate over one's.\n";

}  // namespace

Options ParseOptions(int argc, char** argv) {
  Options options;
  options.example_config = TP_EXAMPLE_CONFIG;
  bool sized = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Fail(arg + " needs a value\n" + kUsage);
      return argv[++i];
    };
    if (arg == "--daemon") {
      options.daemon = value();
    } else if (arg == "--config") {
      options.example_config = value();
    } else if (arg == "--purchases") {
      options.purchases = Count("--purchases", value());
      sized = true;
    } else if (arg == "--touchpoints") {
      options.touchpoints = Count("--touchpoints", value());
      sized = true;
    } else if (arg == "--rounds") {
      const std::int64_t rounds = Count("--rounds", value());
      if (rounds > 1000) Fail("--rounds takes at most 1000");
      options.rounds = static_cast<int>(rounds);
    } else if (arg == "--consumers") {
      options.consumers = static_cast<int>(Count("--consumers", value()));
    } else if (arg == "--webhooks") {
      options.webhooks = Count("--webhooks", value());
      sized = true;
    } else if (arg == "--pending") {
      options.pending = Count("--pending", value());
      sized = true;
    } else if (arg == "--report-purchases") {
      options.report_purchases = Count("--report-purchases", value());
      sized = true;
    } else if (arg == "--lateness-s") {
      options.lateness_s = static_cast<int>(Count("--lateness-s", value()));
      sized = true;
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--only") {
      std::stringstream names(value());
      for (std::string name; std::getline(names, name, ',');) {
        if (name != "ingest" && name != "fire" && name != "caps" && name != "lateness" &&
            name != "webhook" && name != "pending" && name != "events" && name != "fire3") {
          Fail(
              "--only takes ingest, fire, caps, lateness, webhook, pending, events, fire3 "
              "(comma-separated), "
              "not '" +
              name + "'");
        }
        options.only.insert(name);
      }
    } else if (arg == "--keep") {
      options.keep = value();
    } else if (arg == "--store") {
      const std::string store = value();
      if (store != "sqlite" && store != "postgres") {
        Fail("--store takes sqlite or postgres, not '" + store + "'");
      }
      options.postgres = store == "postgres";
    } else if (arg == "--pg-url") {
      options.pg_url = value();
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      Fail("unknown argument '" + arg + "'\n" + kUsage);
    }
  }
  if (options.daemon.empty()) Fail(std::string("--daemon is required\n") + kUsage);
  if (options.quick) {
    if (sized) Fail("--quick sets the sizes; give either --quick or sizes");
    options.purchases = 20'000;
    options.touchpoints = 20'000;
    options.webhooks = 10'000;
    options.pending = 60'000;
    options.report_purchases = 20'000;
    options.lateness_s = 3;
    std::printf("# quick mode: small sizes, the figures are not comparable with a full run\n");
  }
  return options;
}

}  // namespace tp::e2e
