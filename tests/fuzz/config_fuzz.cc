// libFuzzer target: the YAML config loader (config/loader.h), which the
// daemon runs at start and on every SIGHUP.
//
// Beyond not crashing or throwing: a load either gives rules and no errors
// or errors and no rules, and loading the same text twice gives the same
// result (a reload of an unchanged file must not look like a change).
// Paths in a config (secret_file, token_file, ca_file) are relative to the
// working directory here: run.sh runs this target in a scratch directory.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const tp::LoadResult first = tp::LoadRulesString(yaml, "fuzz.yaml");
  if (!first.ok()) {
    FUZZ_CHECK(!first.errors.empty());
    for (const tp::ConfigError& e : first.errors) {
      FUZZ_CHECK(!e.message.empty());
      FUZZ_CHECK(e.line >= 1 && e.column >= 1);
      (void)e.ToString();
    }
    return 0;
  }
  FUZZ_CHECK(first.errors.empty());
  FUZZ_CHECK(first.rules->sha256.size() == 64);
  const tp::LoadResult second = tp::LoadRulesString(yaml, "fuzz.yaml");
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(second.rules->sha256 == first.rules->sha256);
  return 0;
}
