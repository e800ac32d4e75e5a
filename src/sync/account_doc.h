// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// account_doc.h: an account's state as the sync stores it in Redis, a
// small JSON object (the account id is in the key, sync_keys.h):
//
//   {"plan": "pro", "anchor_ms": 1767225600000, "state": "past_due",
//    "past_due_deadline_ms": 1767830400000, "scheduled_plan": "free",
//    "default_model": "gpt-4o-mini",
//    "overrides": [{"limit_id": "tokens", "user_id": "u1",
//                   "unlimited": false, "limit": 5000, "grace": 0.1}]}
//
// Fields at their defaults are left out. Decoding accepts exactly these
// fields and types; an error names the field and quotes at most 80 bytes of
// the text.
//
// Thread safety: pure functions.

#ifndef PLANGATE_SYNC_ACCOUNT_DOC_H_
#define PLANGATE_SYNC_ACCOUNT_DOC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "plangate/enforcer.h"

namespace plangate::internal {

// The document of `update` (its account_id is not part of it).
std::string EncodeAccountDoc(const AccountUpdate& update);

// The update `doc` describes for `account_id`; InvalidArgument naming the
// account and the field when it is not a valid document.
absl::StatusOr<AccountUpdate> DecodeAccountDoc(std::string_view account_id,
                                               std::string_view doc);

std::string_view SubscriptionStateName(SubscriptionState state);

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_ACCOUNT_DOC_H_
