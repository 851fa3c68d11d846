// `touchpointctl simulate --html`: one self-contained page (web/page.h)
// showing one replay's digest, or two and what changes between them.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "simulate/digest.h"
#include "simulate/run_diff.h"

namespace tp {

struct HtmlRun {
  std::string label;  // the config file, as the operator named it
  const SimDigest* digest = nullptr;
};

// The page: `runs` (one, or two with `diff`), in a data object
// {"generated_by", "runs": [...], "compare": diff or null}.
std::string SimulationPage(std::span<const HtmlRun> runs, const RunDiff* diff,
                           std::string_view generated_by);

}  // namespace tp
