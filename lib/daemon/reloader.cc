#include "daemon/reloader.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

#include "config/loader.h"
#include "ops/logging.h"
#include "planner/replan.h"

namespace tp {

Reloader::Reloader(const DaemonOptions& options, const Clock& clock, RulesInForce& rules,
                   Parts parts)
    : options_(options), clock_(clock), rules_(rules), parts_(parts) {
  state_.sha256 = rules_->sha256;
  state_.loaded_at = clock_.Now();
  SetMetrics();
}

Status Reloader::Reload() {
  state_.last_reload_at = clock_.Now();
  // Load.
  LoadResult loaded = LoadRulesFile(options_.config_path);
  if (!loaded.ok()) {
    std::vector<std::string> errors;
    for (const ConfigError& e : loaded.errors) errors.push_back(e.ToString());
    return Failed(std::move(errors), options_.config_path + ": " +
                                         std::to_string(loaded.errors.size()) + " error" +
                                         (loaded.errors.size() == 1 ? "" : "s"));
  }
  const std::shared_ptr<const Rules> next = loaded.rules;
  const std::shared_ptr<const Rules> previous = rules_.shared();
  // Requests parsed under the old rules are recorded under them (on the
  // ingest thread, after this returns: the re-plan waits for them).
  parts_.batcher.Flush();

  // Prepare the push sinks: nothing is in use yet, so a failure changes
  // nothing.
  auto sinks = parts_.dispatcher.Prepare(*next);
  if (!sinks.ok()) return Failed({sinks.status().message()}, sinks.status().message());

  // When the planning rules changed, one short write records that a
  // re-plan to them starts from the first pending touchpoint (the
  // Replanner steps through it afterwards, so the loop is never held for
  // long); a crash from here on resumes it at the next start. If the write
  // cannot be made now, the re-plan's first step makes it; a crash before
  // that leaves the record of the rules before, and a start on these rules
  // re-plans to them (one on the rules before would not re-plan what was
  // planned meanwhile by these).
  const bool replan = !SamePlanning(*previous, *next);
  const Instant now = clock_.Now();
  bool recorded = true;
  if (replan) {
    if (Status s = parts_.store.SetPlanning(PlanningFingerprint(*next), true); !s.ok()) {
      (void)parts_.store.Planning();  // the re-plan under way, if any, as it was
      if (!s.unavailable()) return Failed({s.message()}, s.message());
      // Another step held the sweep past the record's wait (a busy
      // server), or the server is away: the re-plan's first step records
      // it, tried again each second, and firing waits for it meanwhile,
      // as at a start. The reload itself is done.
      spdlog::warn("reload: cannot record the re-plan yet ({}); its first step will", s.message());
      recorded = false;
    }
  }

  // Commit the sinks, then swap the rules every component reads.
  parts_.dispatcher.Commit(std::move(*sinks), *next);
  rules_.Swap(next);
  if (Status s = parts_.store.SetMaxSize(next->database_max_size); !s.ok()) {
    spdlog::warn("database_max_size: cannot apply it, the previous cap stays: {}", s.message());
  }
  if (options_.log_level.empty()) (void)SetLogLevel(next->log_level);
  WarnRestartOnly(*previous, *next);
  state_.sha256 = next->sha256;
  state_.loaded_at = now;
  state_.errors.clear();
  parts_.metrics.reloads.Add({"success"});
  SetMetrics();
  if (replan) {
    spdlog::info("reloaded {} (sha256 {}): planning rules changed", options_.config_path,
                 next->sha256.substr(0, 12));
    // Groups by the old rules still being written: the sweep starts again
    // once they are (Replanner::Run).
    parts_.replanner.Run("the rules reloaded at " + FormatRfc3339(now, UtcZone()),
                         PlanningFingerprint(*next), !recorded || !parts_.batcher.Written());
  } else {
    spdlog::info("reloaded {} (sha256 {}): planning rules unchanged, nothing re-planned",
                 options_.config_path, next->sha256.substr(0, 12));
  }
  parts_.fire.Rearm(true);
  return Status::Ok();
}

Status Reloader::Failed(std::vector<std::string> errors, const std::string& summary) {
  for (const std::string& e : errors) spdlog::error("reload: {}", e);
  spdlog::error("reload failed: {}; still running the config loaded at {} (sha256 {})", summary,
                FormatRfc3339(state_.loaded_at, UtcZone()), state_.sha256.substr(0, 12));
  state_.errors = std::move(errors);
  parts_.metrics.reloads.Add({"failure"});
  SetMetrics();
  return Status::Error(summary);
}

void Reloader::WarnRestartOnly(const Rules& was, const Rules& now) const {
  auto warn = [](const char* key) {
    spdlog::warn("reload: '{}' changed; it takes effect at the next restart", key);
  };
  // A key the command line overrides changes nothing, even at a restart.
  auto overridden = [](const char* key, const char* flag) {
    spdlog::info("reload: '{}' changed; {} overrides it", key, flag);
  };
  if (was.listen != now.listen) {
    options_.listen_from_flag ? overridden("listen", "--listen") : warn("listen");
  }
  if (was.database != now.database) {
    options_.database_from_flag ? overridden("database", "--database") : warn("database");
  }
  if (was.database_sync != now.database_sync) warn("database_sync");
  if (!(was.http_request_timeout == now.http_request_timeout)) warn("http.request_timeout");
  if (was.http_max_connections != now.http_max_connections) warn("http.max_connections");
}

void Reloader::SetMetrics() {
  DaemonMetrics& m = parts_.metrics;
  m.config_info.Clear();
  m.config_info.Set({state_.sha256}, 1);
  m.config_loaded.Set({},
                      static_cast<double>(state_.loaded_at.time_since_epoch().count()) / 1000.0);
  m.reload_ok.Set({}, state_.errors.empty() ? 1 : 0);
}

}  // namespace tp
