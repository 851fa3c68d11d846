// Database URLs (libpq's): whether a location is one, what it sets, and
// how it is shown in logs and messages.
#pragma once

#include <string>
#include <string_view>

namespace tp::pg {

// Whether `location` names a PostgreSQL database (a postgresql:// or
// postgres:// URL) rather than a file.
bool IsUrl(std::string_view location);
// What the URL (or a keyword=value string) sets for `key`, its escapes
// decoded as libpq decodes them; empty when it sets nothing or cannot be
// parsed (which connecting then reports).
std::string UrlParameter(const std::string& url, std::string_view key);
// `url` with any password (in its user info, or a query parameter whose
// key names one: `password`, `sslpassword`) replaced by "***", for logs
// and messages.
std::string Redacted(std::string_view url);
// `url` with the password of its user info replaced by "***".
std::string RedactUserinfo(std::string_view url);

}  // namespace tp::pg
