// One HTML file that needs nothing else: `touchpointctl simulate --html`
// writes it, and it opens offline, from a mail attachment or a shared drive.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace tp {

// The page titled `title`: `data_json` (a JSON value) in a
// <script type="application/json" id="tp-data"> element for the scripts to
// read, then the embedded assets named (web/assets.h) inline, styles in
// <style> and scripts in <script>, in the order given. Its
// Content-Security-Policy allows exactly those (by their SHA-256) and no
// request at all, so the browser itself keeps the page offline.
std::string SelfContainedPage(std::string_view title, std::string_view data_json,
                              std::initializer_list<std::string_view> assets);

}  // namespace tp
