// touchpointctl: the operator's command line. Wiring only; the work is in lib/.
#include <CLI/CLI.hpp>
#include <iostream>

#include "config/loader.h"
#include "core/time.h"
#include "simulate/simulate.h"

namespace {

constexpr int kExitUsage = 64;  // EX_USAGE

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

int Simulate(const std::string& config, const std::string& purchases, const std::string& until) {
  const tp::LoadResult loaded = tp::LoadRulesFile(config);
  if (!loaded.ok()) {
    PrintErrors(loaded.errors);
    return 1;
  }
  tp::SimulateOptions options;
  options.purchases_path = purchases;
  if (!until.empty()) {
    options.until = tp::ParseRfc3339(until);
    if (!options.until) {
      std::cerr << "touchpointctl: --until must be an RFC 3339 time like 2026-12-01T00:00:00Z\n";
      return kExitUsage;
    }
  }
  std::ios::sync_with_stdio(false);
  const tp::SimulateResult result = tp::Simulate(loaded.rules, options, std::cout);
  for (const auto& e : result.errors) std::cerr << e << '\n';
  return result.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"touchpointctl: validate and preview Touchpoint cadence rules", "touchpointctl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("touchpointctl ") + TP_VERSION);

  std::string validate_file;
  auto* validate =
      app.add_subcommand("validate", "Check a config file; print every error with its line");
  validate->add_option("FILE", validate_file, "config file")->required();

  std::string config, purchases, until;
  auto* simulate = app.add_subcommand(
      "simulate",
      "Replay a purchases CSV on a virtual clock; print every touchpoint as JSON lines");
  simulate->add_option("--config", config, "config file")->required();
  simulate
      ->add_option("--purchases", purchases,
                   "CSV: "
                   "order_id,buyer_id,product,quantity,amount,purchased_at,timezone")
      ->required();
  simulate->add_option("--until", until, "stop the virtual clock at this RFC 3339 time");

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
  if (simulate->parsed()) return Simulate(config, purchases, until);
  return kExitUsage;
}
