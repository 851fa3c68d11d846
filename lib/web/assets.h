// Files compiled into the binaries (cmake/embed.cmake, listed in
// lib/CMakeLists.txt): the pages' scripts and styles, and Chart.js as
// Debian's libjs-chart.js installs it. Pages never load anything from the
// network: `touchpointctl simulate --html` inlines these, touchpointd's /ui
// serves them.
#pragma once

#include <span>
#include <string_view>

namespace tp {

struct Asset {
  std::string_view name;  // e.g. "chart.min.js"
  std::string_view content_type;
  std::string_view body;
};

// Every embedded file (generated).
std::span<const Asset> Assets();
// The file named `name`, or nullptr.
const Asset* FindAsset(std::string_view name);

}  // namespace tp
