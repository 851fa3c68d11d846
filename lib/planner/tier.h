// Which tier a purchase puts its buyer in: the first of the rules' tiers
// whose conditions all hold (docs/config.md, "tiers"). Pure.
#pragma once

#include <span>

#include "config/rules.h"
#include "core/model.h"

namespace tp {

struct PastPurchase;

// The tier (an index into rules.tiers) of `purchase`, of `product`, planned
// in `zone`, for a buyer whose purchases before it are `before` (sorted by
// purchased_at; those made at the same instant but recorded earlier
// included). Conditions count `before` and the purchase itself:
//  - min_purchases, min_spend: how many, and the sum of their amounts;
//  - bought: one of them is of one of these products;
//  - within: those three count only purchases made in
//    (purchased_at - within, purchased_at], calendar days in `zone`;
//  - attributes: this purchase's attributes hold each key with a value
//    equal to one of its values (a string as it is, a number or a boolean
//    by its JSON text: 14, true).
// Validation guarantees the last tier always matches.
int TierOf(const Rules& rules, std::span<const PastPurchase> before, const Purchase& purchase,
           int product, const Zone* zone);

}  // namespace tp
