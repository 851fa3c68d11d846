// Checks on text that comes from outside: ids, CSV fields, path segments.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tp {

// The offset of the first byte that breaks UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or nullopt if `text` is
// valid UTF-8.
std::optional<std::size_t> InvalidUtf8At(std::string_view text);

// The offset of the first control character (U+0000-U+001F, U+007F, and
// the C1 controls U+0080-U+009F) of valid UTF-8 `text`, or nullopt.
std::optional<std::size_t> ControlCharacterAt(std::string_view text);

// Order and buyer ids: 1 to kMaxIdBytes bytes of UTF-8 without control
// characters (docs/api.md, "Limits").
inline constexpr std::size_t kMaxIdBytes = 256;

// Why `id` cannot be an id, completing "<what> must ..." (e.g. "must not
// be empty"), or nullopt if it can.
std::optional<std::string> IdProblem(std::string_view id);

// `text` for a message: at most `max` bytes (cut at a character boundary,
// then "..."), with control characters and invalid bytes as \xNN escapes.
std::string Excerpt(std::string_view text, std::size_t max = 64);

// `text` from a peer (a webhook receiver's answer, a Redis reply) for a log
// line or a stored error: valid UTF-8 whatever it was (each byte that breaks
// UTF-8 becomes U+FFFD), control characters as spaces, and at most `max`
// bytes of it (cut at a character boundary, then "...").
std::string Printable(std::string_view text, std::size_t max);

// `text` as text a database keeps: valid UTF-8 (each byte that breaks it
// becomes U+FFFD) without NUL (which becomes U+FFFD too); the rest is kept
// as it is.
std::string ValidUtf8(std::string_view text);

// "1 touchpoint", "2 touchpoints": `noun` with an "s" unless n is 1.
std::string Plural(long long n, std::string_view noun);

// `s` with ASCII letters in lower case (host names, URL schemes, header
// tokens); other bytes as they are.
std::string AsciiLower(std::string_view s);

// Whether `s` is a name the config allows (a sink's, a cadence's, a step
// id): 1-64 letters, digits, '_', '-' or '.', not starting with '-' or '.'.
bool IsName(std::string_view s);

}  // namespace tp
