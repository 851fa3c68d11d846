// SIGHUP: the rules file read again and swapped in, top to bottom in
// Reload(): load -> prepare the push sinks -> record the re-plan to them
// (when the planning rules changed) -> commit the sinks -> swap the rules
// every component reads (config/rules_in_force.h). A file with errors, or a step that fails, keeps
// the rules in force: the errors are logged and shown on /healthz and /metrics (docs/operations.md,
// "Reloading the rules"). The one writer of the daemon's rules.
//
// Not thread-safe: the daemon's loop only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/clock.h"
#include "daemon/daemon.h"
#include "daemon/daemon_metrics.h"
#include "daemon/firing.h"
#include "daemon/ingest_batcher.h"
#include "daemon/replanner.h"
#include "delivery/dispatcher.h"
#include "store/store.h"

namespace tp {

class Reloader {
 public:
  // The config in force and how the last reload went.
  struct State {
    std::string sha256;
    Instant loaded_at;
    std::optional<Instant> last_reload_at;
    std::vector<std::string> errors;  // of the last reload; empty if it worked
  };
  // What a reload changes besides the rules.
  struct Parts {
    Store& store;
    Dispatcher& dispatcher;
    IngestBatcher& batcher;
    Replanner& replanner;
    Firing& fire;
    DaemonMetrics& metrics;
  };

  // `rules`: the daemon's rules in force, which Reload() swaps.
  Reloader(const DaemonOptions& options, const Clock& clock, RulesInForce& rules, Parts parts);

  // Reads options.config_path and swaps it in; the error says why not.
  Status Reload();
  const State& state() const { return state_; }

 private:
  Status Failed(std::vector<std::string> errors, const std::string& summary);
  // Settings a running daemon cannot change: say they wait for a restart.
  void WarnRestartOnly(const Rules& was, const Rules& now) const;
  void SetMetrics();

  const DaemonOptions& options_;
  const Clock& clock_;
  RulesInForce& rules_;
  Parts parts_;
  State state_;
};

}  // namespace tp
