// The URLs sinks point at: http(s)://HOST[:PORT][/PATH][?QUERY] and
// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tp {

struct Url {
  std::string scheme;      // lowercase: "http", "https" or "redis"
  std::string host;        // without brackets for an IPv6 literal
  std::uint16_t port = 0;  // the scheme's default when not given
  std::string target;      // HTTP: path and query, at least "/"; redis: empty
  std::string user;        // redis only
  std::string password;    // redis only; empty = no AUTH
  int database = 0;        // redis only

  // HOST:PORT, with brackets around an IPv6 literal.
  std::string Authority() const;
  // The Host header value: the port only when it is not the scheme's default.
  std::string HostHeader() const;
};

// Parses an http or https URL. The error names what is wrong.
StatusOr<Url> ParseHttpUrl(std::string_view text);
// Parses a redis URL (default port 6379, database 0).
StatusOr<Url> ParseRedisUrl(std::string_view text);

// `text` as a message may quote it: the password of its user info
// replaced by "***" (all of the user info when it has no ':', which a
// redis URL takes as the password), valid URL or not, scheme or not. The
// user info ends at the last '@', since a password may hold '/', '?' or
// '@' (an '@' in a path or query hides more than the password: this only
// ever shows less).
std::string RedactedUrl(std::string_view text);

}  // namespace tp
