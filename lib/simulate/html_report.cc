#include "simulate/html_report.h"

#include "core/json.h"
#include "web/page.h"

namespace tp {

std::string SimulationPage(std::span<const HtmlRun> runs, const RunDiff* diff,
                           std::string_view generated_by) {
  std::string data = "{\"generated_by\":";
  AppendJsonString(data, generated_by);
  data += ",\"runs\":[";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (i > 0) data.push_back(',');
    data += runs[i].digest->Json(runs[i].label);
  }
  data += "],\"compare\":";
  data += diff != nullptr ? diff->Json() : "null";
  data.push_back('}');
  std::string title = "Touchpoint simulation: " + runs.front().label;
  if (runs.size() > 1) title += " vs " + runs[1].label;
  return SelfContainedPage(title, data,
                           {"touchpoint.css", "chart.min.js", "common.js", "simulate.js"});
}

}  // namespace tp
