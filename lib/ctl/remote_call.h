// What touchpointctl's commands that call the daemon share (ctl/remote.cc,
// ctl/import.cc): a client for the daemon, and an error answer in words.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ctl/remote.h"
#include "http/client.h"

namespace tp {

// A client for `remote`, with its token.
StatusOr<std::unique_ptr<HttpClient>> Connect(const Remote& remote);
// The daemon's answer as a message: its "error", or what a 401 means.
std::string ErrorOf(const HttpResult& r, const Remote& remote);
// `s` percent-encoded for a URL's path or query.
std::string UrlEncode(std::string_view s);

}  // namespace tp
