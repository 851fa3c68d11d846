// Shared by the libFuzzer targets: an invariant check that counts as a crash,
// and the brief's rules loaded once per process.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "brief_config.h"
#include "config/loader.h"

// Aborts (a crash to libFuzzer, which saves the input) when `cond` is false.
// A plain assert would vanish in a release build.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

namespace tp::fuzz {

inline std::shared_ptr<const Rules> BriefRules() {
  static const std::shared_ptr<const Rules> rules = [] {
    LoadResult loaded = LoadRulesString(testing::kBriefConfig, "brief.yaml");
    FUZZ_CHECK(loaded.ok());
    return loaded.rules;
  }();
  return rules;
}

}  // namespace tp::fuzz
