// The event every sink hands out for a fired touchpoint (BRIEF section 5):
// {"type": "touchpoint.due", "timestamp", "data": {id, buyer_id, order_id,
// cadence, topic, tier, product, due_at, fire_at, attributes}}.
#pragma once

#include <string>
#include <string_view>

#include "scheduler/store.h"

namespace tp {

// `timestamp` is when the event was made (UTC); due_at and fire_at carry the
// buyer's offset. `attributes` is the purchase's canonical JSON object text,
// or empty for {}.
std::string TouchpointEventJson(const TouchpointView& touchpoint, Instant fire_at,
                                std::string_view attributes, Instant timestamp);

}  // namespace tp
