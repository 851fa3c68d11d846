// Send-window arithmetic: pure functions of an instant, a window and a zone.
#pragma once

#include "config/rules.h"
#include "core/time.h"

namespace tp {

// The earliest instant >= t whose buyer-local time of day is inside `window`
// ([from, to)): t itself when inside, else that day's `from` when t is before
// it, else the next day's `from`. An opening that falls in a DST gap is
// shifted forward as FromLocal() documents.
Instant NextOpening(Instant t, const SendWindow& window, const Zone* zone);

// The opening of the local day after the one containing t: where a touchpoint
// goes when the frequency cap is full on t's day.
Instant NextDayOpening(Instant t, const SendWindow& window, const Zone* zone);

}  // namespace tp
