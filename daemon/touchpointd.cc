// touchpointd: the long-running daemon. Wiring only; the work is in lib/.
#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include "config/loader.h"
#include "core/clock.h"
#include "daemon/daemon.h"
#include "ops/logging.h"
#include "ops/open_files.h"
#include "pg/url.h"

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
  app.add_option("--database", database,
                 "SQLite file or postgresql:// URL (overrides `database:`)");
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error (overrides `log:`)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.set_version_flag("--version", std::string("touchpointd ") + TP_VERSION);
  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr (the journal under systemd); stdout stays unused.
  tp::SetupLogging("touchpointd");
  const tp::LoadResult loaded = tp::LoadRulesFile(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) spdlog::error("{}", e.ToString());
    spdlog::critical("{}: {} error{}; not starting", config_path, loaded.errors.size(),
                     loaded.errors.size() == 1 ? "" : "s");
    return kExitConfig;
  }
  tp::DaemonOptions options;
  options.config_path = config_path;
  options.listen = listen.empty() ? loaded.rules->listen : listen;
  options.database = database.empty() ? loaded.rules->database : database;
  options.listen_from_flag = !listen.empty();
  options.database_from_flag = !database.empty();
  options.log_level = log_level;
  options.version = TP_VERSION;
  // The startup lines below are logged at info even when the level is warn
  // or error, so every start leaves a trace; trace and debug apply at once.
  const std::string level = log_level.empty() ? loaded.rules->log_level : log_level;
  if (level == "trace" || level == "debug") (void)tp::SetLogLevel(level);

  const tp::OpenFileLimit files = tp::RaiseOpenFileLimit();
  if (files.now != files.before) {
    spdlog::debug("open files: raised the soft limit from {} to {}", files.before, files.now);
  }
  boost::asio::io_context io(1);
  tp::SystemClock clock;
  auto daemon = tp::Daemon::Start(io, loaded.rules, options, clock);
  if (!daemon.ok()) {
    spdlog::critical("not starting: {}", daemon.status().message());
    return 1;
  }
  spdlog::info("touchpointd {} listening on {} (database {}, config {} sha256 {})", TP_VERSION,
               (*daemon)->Address(), tp::pg::Redacted(options.database), config_path,
               loaded.rules->sha256.substr(0, 12));
  (void)tp::SetLogLevel(level);
  io.run();
  daemon->reset();
  spdlog::info("stopped");
  return 0;
}
