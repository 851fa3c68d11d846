// touchpointctl: the operator's command line. Wiring only; the work is in lib/.
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "config/loader.h"
#include "core/text.h"
#include "core/time.h"
#include "ctl/export.h"
#include "ctl/outcome_table.h"
#include "ctl/remote.h"
#include "outcomes/report_json.h"
#include "pg/url.h"
#include "simulate/digest.h"
#include "simulate/html_report.h"
#include "simulate/run_diff.h"
#include "simulate/simulate.h"
#include "store/sqlite_store.h"

namespace {

constexpr int kExitUsage = 64;  // EX_USAGE

// An option that is an RFC 3339 time, checked here: the daemon's own
// message speaks of query strings, where a '+' must be written %2B.
const CLI::Validator kRfc3339(
    [](std::string& text) {
      return tp::ParseRfc3339(text) ? std::string()
                                    : "must be an RFC 3339 time like 2026-12-01T00:00:00+08:00";
    },
    "RFC3339");

void PrintErrors(const std::vector<tp::ConfigError>& errors) {
  for (const auto& e : errors) std::cerr << e.ToString() << '\n';
}

std::string Summary(const std::string& path, const tp::Rules& rules) {
  std::size_t steps = 0;
  for (const auto& c : rules.cadences) steps += c.steps.size();
  auto plural = [](std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
  };
  return path + ": ok (version " + std::to_string(rules.version) + "; " +
         plural(rules.products.size(), "product") + ", " + plural(rules.tiers.size(), "tier") +
         ", " + plural(rules.cadences.size(), "cadence") + " with " + plural(steps, "step") + ", " +
         plural(rules.sinks.size(), "sink") + ")";
}

int Validate(const std::string& path) {
  const tp::LoadResult loaded = tp::LoadRulesFile(path);
  if (!loaded.ok()) {
    PrintErrors(loaded.errors);
    std::cerr << path << ": " << loaded.errors.size() << " error"
              << (loaded.errors.size() == 1 ? "" : "s") << '\n';
    return 1;
  }
  std::cout << Summary(path, *loaded.rules) << '\n';
  return 0;
}

struct SimulateFlags {
  std::string config, purchases, events, until, report_by, html, compare;
  bool report = false, json = false;
};

// --html (and --compare): the page instead of JSON lines.
int SimulateHtml(const SimulateFlags& flags, std::shared_ptr<const tp::Rules> rules,
                 tp::SimulateOptions options) {
  std::vector<std::shared_ptr<const tp::Rules>> rule_sets{std::move(rules)};
  std::vector<std::string> labels{flags.config};
  if (!flags.compare.empty()) {
    const tp::LoadResult other = tp::LoadRulesFile(flags.compare);
    if (!other.ok()) {
      PrintErrors(other.errors);
      return 1;
    }
    rule_sets.push_back(other.rules);
    labels.push_back(flags.compare);
  }
  std::vector<std::unique_ptr<tp::SimDigest>> digests;
  std::optional<tp::RunDiff> diff;
  if (rule_sets.size() > 1) diff.emplace();
  std::vector<tp::HtmlRun> runs;
  for (std::size_t i = 0; i < rule_sets.size(); ++i) {
    digests.push_back(std::make_unique<tp::SimDigest>(*rule_sets[i]));
    options.digest = digests.back().get();
    if (diff) {
      options.on_touchpoint = [&diff, i](const tp::TouchpointView& t) {
        i == 0 ? diff->AddA(t) : diff->AddB(t);
      };
    }
    const tp::SimulateResult result = tp::Simulate(rule_sets[i], options, std::cout);
    for (const auto& w : result.warnings) std::cerr << labels[i] << ": " << w << '\n';
    for (const auto& e : result.errors) std::cerr << labels[i] << ": " << e << '\n';
    if (!result.ok()) return 1;
    if (diff && i == 0) diff->Seal();
    runs.push_back({labels[i], digests.back().get()});
  }
  const std::string page =
      tp::SimulationPage(runs, diff ? &*diff : nullptr, std::string("touchpointctl ") + TP_VERSION);
  std::ofstream out(flags.html, std::ios::binary | std::ios::trunc);
  out.write(page.data(), static_cast<std::streamsize>(page.size()));
  out.close();
  if (!out) {
    std::cerr << "touchpointctl: cannot write " << flags.html << ": " << std::strerror(errno)
              << '\n';
    return 1;
  }
  std::cerr << "wrote " << flags.html << " (" << page.size() / 1024 << " KiB)\n";
  return 0;
}

int Simulate(const SimulateFlags& flags) {
  const std::string& config = flags.config;
  const std::string& until = flags.until;
  const tp::LoadResult loaded = tp::LoadRulesFile(config);
  if (!loaded.ok()) {
    PrintErrors(loaded.errors);
    return 1;
  }
  tp::SimulateOptions options;
  options.purchases_path = flags.purchases;
  if (!flags.events.empty()) options.events_path = flags.events;
  if (flags.report) options.report = tp::ParseReportBy(flags.report_by);
  if (!until.empty()) {
    options.until = tp::ParseRfc3339(until);
    if (!options.until) {
      std::cerr << "touchpointctl: --until must be an RFC 3339 time like 2026-12-01T00:00:00Z\n";
      return kExitUsage;
    }
  }
  std::ios::sync_with_stdio(false);
  if (!flags.html.empty()) return SimulateHtml(flags, loaded.rules, options);
  const tp::SimulateResult result = tp::Simulate(loaded.rules, options, std::cout);
  for (const auto& w : result.warnings) std::cerr << w << '\n';
  for (const auto& e : result.errors) std::cerr << e << '\n';
  if (result.ok() && result.report) {
    const auto report = tp::ReportJson(*result.report);
    if (flags.json) {
      std::cout << report.dump(2) << '\n';
    } else {
      tp::PrintOutcomeReport(report, std::cout);
    }
  }
  return result.ok() ? 0 : 1;
}

// The columns of the terminal `fd` is, or 0 if it is none.
int TerminalWidth(int fd) {
  if (::isatty(fd) == 0) return 0;
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

std::string DefaultUrl() {
  const char* env = std::getenv("TOUCHPOINT_URL");
  return env != nullptr && *env != '\0' ? env : "http://127.0.0.1:8787";
}

int Import(const tp::ImportOptions& options) {
  tp::ImportResult result;
  const tp::Status s = tp::Import(options, result, std::cerr);
  for (const auto& r : result.rejected) std::cerr << r << '\n';
  std::cout << options.path << ": " << tp::Plural(static_cast<long long>(result.lines), "line")
            << ", " << result.accepted << " accepted, "
            << tp::Plural(static_cast<long long>(result.duplicates), "duplicate") << ", "
            << result.rejected.size() << " rejected\n";
  if (!s.ok()) {
    std::cerr << "touchpointctl: " << s.message() << '\n';
    return 1;
  }
  return result.rejected.empty() ? 0 : 1;
}

int Buyer(const tp::Remote& remote, const std::string& id, bool json) {
  const tp::Status s = tp::ShowBuyer(remote, id, json, std::cout);
  if (!s.ok()) {
    std::cerr << "touchpointctl: " << s.message() << '\n';
    return 1;
  }
  return 0;
}

int Report(const tp::Status& s) {
  if (s.ok()) return 0;
  std::cerr << "touchpointctl: " << s.message() << '\n';
  return 1;
}

// --url and --token-file, for a command that talks to the daemon.
struct RemoteFlags {
  std::string url = DefaultUrl();
  std::string token_file;

  void Add(CLI::App* command) {
    command->add_option("--url", url,
                        "the daemon's API (default $TOUCHPOINT_URL or http://127.0.0.1:8787)");
    command->add_option("--token-file", token_file,
                        "file with the API token (default: $TOUCHPOINT_TOKEN, if set)");
  }
  // The remote, or nullopt after printing why not.
  std::optional<tp::Remote> Resolve() const {
    auto token = tp::ResolveToken(token_file);
    if (!token.ok()) {
      std::cerr << "touchpointctl: " << token.status().message() << '\n';
      return std::nullopt;
    }
    return tp::Remote{url, *token};
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"touchpointctl: validate and preview Touchpoint rules, and talk to touchpointd",
               "touchpointctl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("touchpointctl ") + TP_VERSION);

  std::string validate_file;
  auto* validate =
      app.add_subcommand("validate", "Check a config file; print every error with its line");
  validate->add_option("FILE", validate_file, "config file")->required();

  SimulateFlags sim;
  auto* simulate = app.add_subcommand(
      "simulate",
      "Replay a purchases CSV on a virtual clock; print every touchpoint as JSON lines");
  simulate->add_option("--config", sim.config, "config file")->required();
  simulate
      ->add_option("--purchases", sim.purchases,
                   "CSV: "
                   "order_id,buyer_id,product,quantity,amount,purchased_at,timezone")
      ->required();
  simulate->add_option("--events", sim.events,
                       "CSV of engagement events: event_id,buyer_id,type,at,touchpoint_id");
  simulate->add_option("--until", sim.until, "stop the virtual clock at this RFC 3339 time");
  auto* sim_report =
      simulate->add_flag("--report", sim.report,
                         "print the outcomes report (docs/outcomes.md) instead of the touchpoints");
  sim.report_by = "tier";
  simulate->add_option("--by", sim.report_by, "with --report: tier, product, cadence or topic")
      ->check(CLI::IsMember({"tier", "product", "cadence", "topic"}))
      ->needs(sim_report);
  simulate->add_flag("--json", sim.json, "with --report: the API's JSON instead of a table")
      ->needs(sim_report);
  auto* sim_html = simulate->add_option(
      "--html", sim.html,
      "write a self-contained HTML page (load per day, hours, funnel, outcomes, journeys) "
      "instead of the touchpoints");
  sim_html->excludes(sim_report);
  simulate
      ->add_option("--compare", sim.compare,
                   "with --html: the same purchases under this config too, and what changes")
      ->needs(sim_html);

  tp::ImportOptions import_options;
  RemoteFlags import_remote;
  bool import_events = false;
  auto* import_cmd = app.add_subcommand(
      "import",
      "Send a purchases (or --events) CSV to a running daemon in batches; report rejected lines");
  import_remote.Add(import_cmd);
  import_cmd->add_option("--batch", import_options.batch, "rows per request (1-1000)")
      ->check(CLI::Range(1, 1000));
  long long import_retry_for = 600;
  import_cmd
      ->add_option("--retry-for", import_retry_for,
                   "seconds to keep sending a batch again while the daemon answers 503 or, "
                   "having answered, cannot be reached (0: no retry)")
      ->check(CLI::Range(0LL, 86400LL));
  import_cmd->add_flag("--events", import_events,
                       "FILE is engagement events: event_id,buyer_id,type,at,touchpoint_id");
  import_cmd
      ->add_option("FILE", import_options.path,
                   "CSV: order_id,buyer_id,product,quantity,amount,purchased_at,timezone")
      ->required();

  RemoteFlags report_remote;
  tp::OutcomeReportQuery report_query;
  bool report_json = false;
  auto* report = app.add_subcommand(
      "report",
      "Outcomes: trust and repurchase rates by tier or product, or what each cadence's "
      "or topic's touchpoints achieved (docs/outcomes.md)");
  report_remote.Add(report);
  report->add_option("--from", report_query.from, "purchases (or fires) from this RFC 3339 time")
      ->check(kRfc3339);
  report->add_option("--to", report_query.to, "... up to before this one")->check(kRfc3339);
  report->add_option("--as-of", report_query.as_of, "what was known then (default: now)")
      ->check(kRfc3339);
  report->add_option("--by", report_query.by, "tier (default), product, cadence or topic")
      ->check(CLI::IsMember({"tier", "product", "cadence", "topic"}));
  report->add_flag("--json", report_json, "print the API's JSON instead");

  RemoteFlags buyer_remote;
  std::string buyer_id;
  bool buyer_json = false;
  auto* buyer = app.add_subcommand("buyer", "Show a buyer's purchases and touchpoint timeline");
  buyer_remote.Add(buyer);
  buyer->add_flag("--json", buyer_json, "print the API's JSON instead");
  buyer->add_option("ID", buyer_id, "buyer id")->required();

  auto* dead = app.add_subcommand("dead-letters", "List or replay webhook and stream dead letters");
  dead->require_subcommand(1);
  RemoteFlags dead_remote;
  std::string dead_sink;
  bool dead_json = false, dead_all = false;
  std::vector<std::string> dead_ids;
  auto* dead_list = dead->add_subcommand("list", "Every dead letter: id, sink, touchpoint, error");
  dead_remote.Add(dead_list);
  dead_list->add_option("--sink", dead_sink, "only this sink's");
  dead_list->add_flag("--json", dead_json, "one JSON object per line, event included");
  auto* dead_replay =
      dead->add_subcommand("replay", "Put dead letters back in their outbox, due now");
  dead_remote.Add(dead_replay);
  auto* all_flag = dead_replay->add_flag("--all", dead_all, "every dead letter");
  dead_replay->add_option("--sink", dead_sink, "with --all: only this sink's")->needs(all_flag);
  auto* ids_option = dead_replay->add_option("ID", dead_ids, "dead letter ids (from 'list')");
  all_flag->excludes(ids_option);

  tp::ExportOptions export_options;
  auto* export_cmd = app.add_subcommand(
      "export",
      "Write a database's purchases and events as the CSVs simulate reads "
      "(OUT_DIR/purchases.csv, OUT_DIR/events.csv), from one snapshot, even while touchpointd "
      "runs");
  export_cmd
      ->add_option("--database", export_options.database,
                   "the daemon's SQLite file, or its PostgreSQL URL")
      ->required();
  export_cmd->add_option("OUT_DIR", export_options.out_dir, "folder for the two files")->required();

  std::string backup_database, backup_out;
  auto* backup = app.add_subcommand(
      "backup", "Copy the database consistently, even while touchpointd runs (SQLite backup API)");
  backup->add_option("--database", backup_database, "the daemon's SQLite file")->required();
  backup->add_option("OUT", backup_out, "the new file to write (must not exist)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "touchpointctl: " << e.what() << "\n(run 'touchpointctl --help')\n";
    return kExitUsage;
  }
  if (validate->parsed()) return Validate(validate_file);
  if (backup->parsed()) {
    if (tp::pg::IsUrl(backup_database)) {
      return Report(tp::Status::Error(
          "backup copies a SQLite file; back up a PostgreSQL database with pg_dump "
          "(docs/scaling.md)"));
    }
    const tp::Status s = tp::SqliteStore::Backup(backup_database, backup_out);
    if (!s.ok()) return Report(s);
    std::error_code ec;
    std::cout << "backed up " << backup_database << " to " << backup_out << " ("
              << std::filesystem::file_size(backup_out, ec) << " bytes, integrity ok)\n";
    return 0;
  }
  if (simulate->parsed()) return Simulate(sim);
  if (export_cmd->parsed()) {
    export_options.terminal_width = TerminalWidth(STDERR_FILENO);
    tp::ExportResult exported;
    const tp::Status s = tp::Export(export_options, exported, std::cerr);
    if (!s.ok()) return Report(s);
    std::cout << "exported " << tp::Plural(exported.purchases, "purchase") << " and "
              << tp::Plural(exported.events, "event") << " from "
              << tp::pg::Redacted(export_options.database) << " to " << export_options.out_dir
              << "/purchases.csv and events.csv\n";
    return 0;
  }
  if (import_cmd->parsed()) {
    auto remote = import_remote.Resolve();
    if (!remote) return kExitUsage;
    import_options.remote = *remote;
    if (import_events) import_options.kind = tp::ImportOptions::Kind::kEvents;
    import_options.retry_for = std::chrono::seconds(import_retry_for);
    import_options.terminal_width = TerminalWidth(STDERR_FILENO);
    return Import(import_options);
  }
  if (report->parsed()) {
    auto remote = report_remote.Resolve();
    if (!remote) return kExitUsage;
    return Report(tp::ShowOutcomes(*remote, report_query, report_json, std::cout));
  }
  if (buyer->parsed()) {
    auto remote = buyer_remote.Resolve();
    return remote ? Buyer(*remote, buyer_id, buyer_json) : kExitUsage;
  }
  if (dead_list->parsed()) {
    auto remote = dead_remote.Resolve();
    if (!remote) return kExitUsage;
    return Report(tp::ListDeadLetters(*remote, dead_sink, dead_json, std::cout));
  }
  if (dead_replay->parsed()) {
    if (!dead_all && dead_ids.empty()) {
      std::cerr << "touchpointctl: dead-letters replay needs ids or --all\n";
      return kExitUsage;
    }
    auto remote = dead_remote.Resolve();
    if (!remote) return kExitUsage;
    return Report(tp::ReplayDeadLetters(*remote, dead_ids, dead_all, dead_sink, std::cout));
  }
  return kExitUsage;
}
