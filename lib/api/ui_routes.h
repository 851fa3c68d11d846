// The status page (docs/operations.md, "The status page"): GET /ui/ serves
// a page and its scripts and styles, compiled into the binary (web/
// assets.h); the page reads everything it shows from the /v1/ API and
// /healthz, with the operator's token when `auth` is on. The files hold no
// data, so they are served without a token. GET /ui redirects to /ui/, so
// the page's relative addresses work behind a proxy's prefix too.
#pragma once

#include "api/router.h"

namespace tp::api {

// The Content-Security-Policy of every /ui/ answer: the page's own files,
// requests to its own origin, nothing else (no inline script, no frame).
inline constexpr const char* kUiContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void AddUiRoutes(Router& router);

}  // namespace tp::api
