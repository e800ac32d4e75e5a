// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// events.h: threshold events, delivered to a sink the host implements.
//
// When a request takes a limit's usage across its soft-nudge fraction (80%
// by default) or across 100%, the Enforcer records a ThresholdEvent. The
// check path only appends a few words to a bounded lock-free queue; the
// events reach the sink from Enforcer::Maintain (or DeliverEvents), off the
// hot path, at most once per (subject, limit, window) for this Enforcer.
//
//   class Mailer : public plangate::EventSink {
//     void OnThreshold(const plangate::ThresholdEvent& e) override {
//       if (e.kind == plangate::ThresholdKind::kSoftNudge) SendNudge(e);
//     }
//   };
//   options.event_sink = &mailer;  // must outlive the Enforcer
//
// Thread safety: OnThreshold is called from whichever thread runs Maintain
// or DeliverEvents, one call at a time. It may call back into the
// Enforcer.

#ifndef PLANGATE_EVENTS_H_
#define PLANGATE_EVENTS_H_

#include <cstdint>
#include <string>

#include "plangate/catalog.h"

namespace plangate {

enum class ThresholdKind : uint8_t {
  kSoftNudge = 0,  // usage reached the limit's soft_nudge fraction
  kHardCap = 1,    // usage reached 100% of the limit (grace may follow)
};

struct ThresholdEvent {
  ThresholdKind kind = ThresholdKind::kSoftNudge;
  std::string account_id;
  Scope scope = Scope::kAccount;
  std::string subject_id;  // project, key or user id; empty for the account
  std::string limit_id;
  int64_t window_start_ms = 0;
  int64_t window_end_ms = 0;
  int64_t used = 0;   // usage right after the crossing request
  int64_t limit = 0;  // the limit's nominal cap
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnThreshold(const ThresholdEvent& event) = 0;
};

}  // namespace plangate

#endif  // PLANGATE_EVENTS_H_
