// touchpointd: the long-running daemon. Wiring only; the work is in lib/.
#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <iostream>

#include "config/loader.h"
#include "core/clock.h"
#include "daemon/daemon.h"

namespace {

constexpr int kExitConfig = 78;  // EX_CONFIG: systemd must not restart-loop on it

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"touchpointd: touchpoint scheduling and reminder daemon"};
  std::string config_path;
  std::string listen;
  std::string database;
  app.add_option("--config", config_path, "the YAML rules file")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve the API on (overrides `listen:`)");
  app.add_option("--database", database, "SQLite file (overrides `database:`)");
  app.set_version_flag("--version", std::string("touchpointd ") + TP_VERSION);
  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr, like every message of a daemon; stdout stays unused.
  spdlog::set_default_logger(spdlog::stderr_color_mt("touchpointd"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  const tp::LoadResult loaded = tp::LoadRulesFile(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << e.ToString() << '\n';
    std::cerr << "touchpointd: " << config_path << ": " << loaded.errors.size() << " error"
              << (loaded.errors.size() == 1 ? "" : "s") << "; not starting\n";
    return kExitConfig;
  }
  tp::DaemonOptions options;
  options.listen = listen.empty() ? loaded.rules->listen : listen;
  options.database = database.empty() ? loaded.rules->database : database;

  boost::asio::io_context io(1);
  tp::SystemClock clock;
  auto daemon = tp::Daemon::Start(io, loaded.rules, options, clock);
  if (!daemon.ok()) {
    std::cerr << "touchpointd: " << daemon.status().message() << '\n';
    return 1;
  }
  spdlog::info("touchpointd {} listening on {} (database {})", TP_VERSION, (*daemon)->Address(),
               options.database);
  io.run();
  daemon->reset();
  spdlog::info("stopped");
  return 0;
}
