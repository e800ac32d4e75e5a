// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/http.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "plangate/catalog.h"
#include "plangate/decision.h"

namespace plangate::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kSecond = 1000;
constexpr int64_t kDay = 86400 * kSecond;
// A minute boundary (and a plausible billing anchor), in Unix ms.
constexpr int64_t kT0 = 1'700'000'040'000;

Headers HeadersOf(const HttpRendering& r) {
  Headers out;
  for (const HttpHeader& h : r.headers()) {
    out.emplace_back(std::string(h.name), std::string(h.value));
  }
  return out;
}

// The body parsed as JSON; fails the test if it is not valid JSON.
nlohmann::json ParseBody(const HttpRendering& r) {
  nlohmann::json body;
  REQUIRE_NOTHROW(body = nlohmann::json::parse(r.body()));
  return body;
}

// The "error" object of a denial body, checked for its four fields.
nlohmann::json ErrorOf(const HttpRendering& r) {
  const nlohmann::json body = ParseBody(r);
  REQUIRE(body.is_object());
  REQUIRE(body.size() == 1);
  const nlohmann::json& error = body.at("error");
  REQUIRE(error.size() == 4);
  CHECK(error.at("message").is_string());
  CHECK(error.at("type").is_string());
  CHECK(error.at("param").is_null());
  return error;
}

// A monthly 50,000-request limit with 10% grace, exhausted, 3 days before
// its reset: Aerostack's request 55,001.
Decision BillingDenial() {
  Decision d;
  d.status = 402;
  d.deny = DenyKind::kLimit;
  d.reason = "billing_limit_reached";
  d.has_limit = true;
  d.limit.limit_id = "monthly_requests";
  d.limit.meter = "requests";
  d.limit.window = WindowUnit::kBillingPeriod;
  d.limit_value = 50'000;
  d.hard_limit = 55'000;
  d.used = 55'000;
  d.remaining = 0;
  d.window_start_ms = kT0;
  d.reset_ms = kT0 + 30 * kDay;
  d.retry_after_ms = 3 * kDay;
  return d;
}

// A sliding 60/minute limit, full, 44.2 s into the minute; the request
// fits again in 1.5 s.
Decision MinuteDenial() {
  Decision d;
  d.status = 429;
  d.deny = DenyKind::kLimit;
  d.reason = "rate_limited";
  d.has_limit = true;
  d.limit.limit_id = "burst";
  d.limit.meter = "requests";
  d.limit.window = WindowUnit::kMinute;
  d.limit.mode = WindowMode::kSliding;
  d.limit_value = 60;
  d.hard_limit = 60;
  d.used = 60;
  d.remaining = 0;
  d.window_start_ms = kT0;
  d.reset_ms = kT0 + 60 * kSecond;
  d.retry_after_ms = 1500;
  return d;
}
constexpr int64_t kMinuteNow = kT0 + 44'200;

// Admitted at 10 of a monthly 12 (10 + 20% grace): past the soft nudge.
Decision SoftNudge() {
  Decision d;
  d.warnings = kWarnSoftNudge;
  d.has_limit = true;
  d.limit.limit_id = "monthly";
  d.limit.meter = "requests";
  d.limit_value = 10;
  d.hard_limit = 12;
  d.used = 7;
  d.remaining = 4;
  d.window_start_ms = kT0;
  d.reset_ms = kT0 + 30 * kDay;
  return d;
}
constexpr int64_t kSoftNudgeNow = kT0 + 10 * kDay + 500;

TEST_CASE("admitted without limit info: 200, no headers, no body", "[http]") {
  const HttpRendering r(Decision{}, kT0);
  CHECK(r.status() == 200);
  CHECK(r.headers().empty());
  CHECK(r.body().empty());
}

TEST_CASE("soft nudge: warning and exact RateLimit headers", "[http]") {
  const HttpRendering r(SoftNudge(), kSoftNudgeNow);
  CHECK(r.status() == 200);
  // 20 days minus 500 ms until the reset: t rounds up to 20 days.
  CHECK(HeadersOf(r) == Headers{
                            {"RateLimit-Policy", R"("monthly";q=12;w=2592000)"},
                            {"RateLimit", R"("monthly";r=4;t=1728000)"},
                            {"X-RateLimit-Limit", "12"},
                            {"X-RateLimit-Remaining", "4"},
                            {"X-RateLimit-Reset", "1728000"},
                            {"X-Plangate-Warning", "soft_nudge"},
                        });
  CHECK(r.body().empty());
}

TEST_CASE("every warning bit and shadow mode are listed", "[http]") {
  Decision d;
  d.warnings = kWarnSoftNudge | kWarnGrace | kWarnPastDue | kWarnShadowDenied;
  d.shadow = true;
  const HttpRendering r(d, kT0);
  CHECK(HeadersOf(r) == Headers{
                            {"X-Plangate-Warning",
                             "soft_nudge, grace, past_due, shadow_denied"},
                            {"X-Plangate-Shadow", "would_deny"},
                        });
}

TEST_CASE("429 from a minute window: Retry-After and exact IETF headers",
          "[http]") {
  const HttpRendering r(MinuteDenial(), kMinuteNow);
  CHECK(r.status() == 429);
  // Retry-After: ceil(1.5 s); t: ceil(15.8 s).
  CHECK(HeadersOf(r) == Headers{
                            {"Retry-After", "2"},
                            {"RateLimit-Policy", R"("burst";q=60;w=60)"},
                            {"RateLimit", R"("burst";r=0;t=16)"},
                            {"X-RateLimit-Limit", "60"},
                            {"X-RateLimit-Remaining", "0"},
                            {"X-RateLimit-Reset", "16"},
                            {"Content-Type", "application/json"},
                        });
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("type") == "rate_limit_exceeded");
  CHECK(error.at("code") == "rate_limited");
  CHECK(error.at("message") ==
        "Per-minute limit of 60 requests reached for burst; "
        "try again in 2 seconds.");
}

TEST_CASE("402 billing denial: OpenAI-style body", "[http]") {
  const Decision d = BillingDenial();
  const HttpRendering r(d, d.reset_ms - 3 * kDay);
  CHECK(r.status() == 402);
  CHECK(r.header("Retry-After") == "259200");
  CHECK(r.header("RateLimit-Policy") ==
        R"("monthly_requests";q=55000;w=2592000)");
  CHECK(r.header("RateLimit") == R"("monthly_requests";r=0;t=259200)");
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("type") == "insufficient_quota");
  CHECK(error.at("code") == "billing_limit_reached");
  CHECK(error.at("message") ==
        "Monthly limit of 50000 requests reached for monthly_requests; "
        "resets in 3 days.");
}

TEST_CASE("the catalog's own message wins over the generated one", "[http]") {
  Decision d = BillingDenial();
  d.message = "Free plan exhausted.";
  const HttpRendering r(d, kT0);
  CHECK(ErrorOf(r).at("message") == "Free plan exhausted.");
}

TEST_CASE("403 with quotes and control characters: valid, escaped JSON",
          "[http]") {
  Decision d;
  d.status = 403;
  d.deny = DenyKind::kModelNotAllowed;
  d.reason = "plan_limit_error";
  const std::string message =
      "Model \"gpt-5\" is not\nallowed\there \\ \x01\x1f caf\xc3\xa9 "
      "\xe2\x82\xac";
  d.message = message;
  const HttpRendering r(d, kT0);
  CHECK(r.status() == 403);
  const std::string_view body = r.body();
  CHECK(body.find(R"(Model \"gpt-5\" is not\nallowed\there \\ )") !=
        std::string_view::npos);
  CHECK(body.find(R"(\u0001\u001f)") != std::string_view::npos);
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("type") == "permission_denied");
  CHECK(error.at("code") == "plan_limit_error");
  CHECK(error.at("message") == message);
  CHECK(HeadersOf(r) == Headers{{"Content-Type", "application/json"}});
}

TEST_CASE("invalid UTF-8 in a message becomes U+FFFD", "[http]") {
  Decision d;
  d.status = 403;
  d.reason = "plan_limit_error";
  // A stray continuation byte, a truncated sequence, an overlong form, a
  // surrogate.
  d.message = "a\x80 b\xe2\x82 c\xc0\xaf d\xed\xa0\x80";
  const HttpRendering r(d, kT0);
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("message") ==
        "a\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd "
        "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("a policy id is an escaped sf-string", "[http]") {
  Decision d = SoftNudge();
  SECTION("quote and backslash are escaped") {
    d.limit.limit_id = R"(say "hi" \o/)";
    const HttpRendering r(d, kSoftNudgeNow);
    CHECK(r.header("RateLimit-Policy") ==
          R"("say \"hi\" \\o/";q=12;w=2592000)");
    CHECK(r.header("RateLimit") == R"("say \"hi\" \\o/";r=4;t=1728000)");
  }
  SECTION("non-ASCII and control characters become '_'") {
    d.limit.limit_id = "t\xc3\xb6kens\r\nX-Evil: 1";
    const HttpRendering r(d, kSoftNudgeNow);
    CHECK(r.header("RateLimit-Policy") ==
          R"("t_kens__X-Evil: 1";q=12;w=2592000)");
    for (const HttpHeader& h : r.headers()) {
      CHECK(h.value.find_first_of("\r\n") == std::string_view::npos);
    }
  }
}

TEST_CASE("options turn header families off", "[http]") {
  const Decision denial = MinuteDenial();
  Decision admitted = SoftNudge();
  admitted.shadow = true;

  SECTION("no IETF headers") {
    const HttpRendering r(denial, kMinuteNow, {.ietf_headers = false});
    CHECK(r.header("RateLimit-Policy").empty());
    CHECK(r.header("RateLimit").empty());
    CHECK(r.header("Retry-After") == "2");
    CHECK(r.header("X-RateLimit-Limit") == "60");
  }
  SECTION("no X-RateLimit headers") {
    const HttpRendering r(denial, kMinuteNow, {.x_ratelimit_headers = false});
    CHECK(HeadersOf(r) == Headers{
                              {"Retry-After", "2"},
                              {"RateLimit-Policy", R"("burst";q=60;w=60)"},
                              {"RateLimit", R"("burst";r=0;t=16)"},
                              {"Content-Type", "application/json"},
                          });
  }
  SECTION("no warning headers") {
    const HttpRendering r(admitted, kSoftNudgeNow, {.warning_headers = false});
    CHECK(r.header("X-Plangate-Warning").empty());
    CHECK(r.header("X-Plangate-Shadow").empty());
    CHECK(r.header("RateLimit") == R"("monthly";r=4;t=1728000)");
  }
  SECTION("no Content-Type") {
    const HttpRendering r(denial, kMinuteNow, {.content_type_header = false});
    CHECK(r.header("Content-Type").empty());
    CHECK_FALSE(r.body().empty());
  }
  SECTION("everything off but Retry-After") {
    const HttpOptions none{.ietf_headers = false,
                           .x_ratelimit_headers = false,
                           .warning_headers = false,
                           .content_type_header = false};
    CHECK(HeadersOf(HttpRendering(denial, kMinuteNow, none)) ==
          Headers{{"Retry-After", "2"}});
    CHECK(HttpRendering(admitted, kSoftNudgeNow, none).headers().empty());
  }
}

TEST_CASE("Retry-After rounds up and is at least 1", "[http]") {
  Decision d = MinuteDenial();
  const std::vector<std::pair<int64_t, std::string>> cases = {
      {1, "1"}, {999, "1"}, {1000, "1"}, {1001, "2"}, {61'000, "61"}};
  for (const auto& [ms, expected] : cases) {
    d.retry_after_ms = ms;
    CHECK(HttpRendering(d, kMinuteNow).header("Retry-After") == expected);
  }
  d.retry_after_ms = 0;
  CHECK(HttpRendering(d, kMinuteNow).header("Retry-After").empty());
}

TEST_CASE("unknown window start or reset leaves w and t out", "[http]") {
  Decision d = SoftNudge();
  d.window_start_ms = 0;
  const HttpRendering no_start(d, kSoftNudgeNow);
  CHECK(no_start.header("RateLimit-Policy") == R"("monthly";q=12)");
  d.reset_ms = 0;
  const HttpRendering no_reset(d, kSoftNudgeNow);
  CHECK(no_reset.header("RateLimit") == R"("monthly";r=4)");
  CHECK(no_reset.header("X-RateLimit-Reset").empty());
  CHECK(no_reset.header("X-RateLimit-Limit") == "12");
}

TEST_CASE("a reset in the past renders t=0", "[http]") {
  const Decision d = SoftNudge();
  const HttpRendering r(d, d.reset_ms + 5 * kSecond);
  CHECK(r.header("RateLimit") == R"("monthly";r=4;t=0)");
  CHECK(r.header("X-RateLimit-Reset") == "0");
}

TEST_CASE("an unlimited deciding limit renders no limit headers", "[http]") {
  Decision d;
  d.has_limit = true;
  d.limit.limit_id = "tokens";
  d.hard_limit = 0;
  d.remaining = kMaxCount;
  d.reset_ms = kT0 + kDay;
  const HttpRendering r(d, kT0);
  CHECK(r.headers().empty());
}

TEST_CASE("denials without a limit get a type, code and sentence", "[http]") {
  struct Row {
    int status;
    DenyKind kind;
    std::string_view type;
    std::string_view code;
  };
  const std::vector<Row> rows = {
      {403, DenyKind::kUnknownAccount, "permission_denied", "unknown_account"},
      {403, DenyKind::kUnknownPlan, "permission_denied", "unknown_plan"},
      {400, DenyKind::kInvalidRequest, "invalid_request_error",
       "invalid_request"},
      {503, DenyKind::kCapacity, "server_error", "capacity_exhausted"},
      {402, DenyKind::kPaymentRequired, "insufficient_quota",
       "payment_required"},
  };
  for (const Row& row : rows) {
    INFO("status " << row.status << " code " << row.code);
    Decision d;
    d.status = row.status;
    d.deny = row.kind;
    d.reason = DenyKindReason(row.kind);
    const HttpRendering r(d, kT0);
    CHECK(r.status() == row.status);
    const nlohmann::json error = ErrorOf(r);
    CHECK(error.at("type") == row.type);
    CHECK(error.at("code") == row.code);
    CHECK_FALSE(error.at("message").get<std::string>().empty());
  }
}

TEST_CASE("an upgrade target is named in the generated message", "[http]") {
  Decision d;
  d.status = 402;
  d.deny = DenyKind::kFeatureNotInPlan;
  d.reason = "feature_not_in_plan";
  d.upgrade_plan = "pro";
  const nlohmann::json error = ErrorOf(HttpRendering(d, kT0));
  CHECK(error.at("message") ==
        "This feature is not included in your plan. Upgrade to the pro plan.");
}

TEST_CASE("no reason at all: code is null; bad status becomes 500", "[http]") {
  Decision d;
  d.status = 999;
  const HttpRendering r(d, kT0);
  CHECK(r.status() == 500);
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("code").is_null());
  CHECK(error.at("type") == "server_error");
  CHECK(error.at("message") == "The request was denied.");
}

TEST_CASE("an oversized message is cut at a character, still valid JSON",
          "[http]") {
  Decision d = BillingDenial();
  std::string message;
  for (int i = 0; i < 2000; ++i) message += "\xc3\xa9\"";  // é"
  d.message = message;
  const HttpRendering r(d, kT0);
  CHECK(r.body().size() <= HttpRendering::kBodyBufferSize);
  const nlohmann::json error = ErrorOf(r);
  const std::string cut = error.at("message").get<std::string>();
  CHECK(cut.size() > 500);
  CHECK(cut.size() < message.size());
  CHECK(message.compare(0, cut.size(), cut) == 0);
  CHECK(error.at("code") == "billing_limit_reached");
}

TEST_CASE("an id too long for the header buffer drops only those headers",
          "[http]") {
  Decision d = MinuteDenial();
  const std::string id(HttpRendering::kHeaderBufferSize, 'x');
  d.limit.limit_id = id;
  const HttpRendering r(d, kMinuteNow);
  CHECK(r.header("RateLimit-Policy").empty());
  CHECK(r.header("RateLimit").empty());
  CHECK(HeadersOf(r) == Headers{
                            {"Retry-After", "2"},
                            {"X-RateLimit-Limit", "60"},
                            {"X-RateLimit-Remaining", "0"},
                            {"X-RateLimit-Reset", "16"},
                            {"Content-Type", "application/json"},
                        });
  // The generated message quotes a prefix of the id.
  const nlohmann::json error = ErrorOf(r);
  CHECK(error.at("message").get<std::string>().find(std::string(128, 'x')) !=
        std::string::npos);
}

TEST_CASE("numbers of every length render as their decimal digits", "[http]") {
  // 0, 9, 10, 99, 100, ... up to 10^18, and the largest int64: every digit
  // count, each written once and copied to its second header.
  std::vector<int64_t> values{0, std::numeric_limits<int64_t>::max()};
  for (int64_t p = 1;; p *= 10) {
    values.push_back(p - 1);
    values.push_back(p);
    if (p > std::numeric_limits<int64_t>::max() / 10) break;
  }
  for (const int64_t hard : values) {
    Decision d = SoftNudge();
    d.hard_limit = hard;
    d.remaining = hard / 3;
    const HttpRendering r(d, kSoftNudgeNow);
    CAPTURE(hard);
    CHECK(r.header("RateLimit-Policy") ==
          R"("monthly";q=)" + std::to_string(hard) + ";w=2592000");
    CHECK(r.header("RateLimit") ==
          R"("monthly";r=)" + std::to_string(hard / 3) + ";t=1728000");
    CHECK(r.header("X-RateLimit-Limit") == std::to_string(hard));
    CHECK(r.header("X-RateLimit-Remaining") == std::to_string(hard / 3));
    CHECK(r.header("X-RateLimit-Reset") == "1728000");
  }
}

TEST_CASE("header lookup ignores case", "[http]") {
  const HttpRendering r(MinuteDenial(), kMinuteNow);
  CHECK(r.header("retry-after") == "2");
  CHECK(r.header("RATELIMIT") == R"("burst";r=0;t=16)");
  CHECK(r.header("X-Missing").empty());
}

TEST_CASE("a copy owns its views", "[http]") {
  const Headers expected = HeadersOf(HttpRendering(MinuteDenial(), kMinuteNow));
  std::optional<HttpRendering> original;
  original.emplace(MinuteDenial(), kMinuteNow);
  const HttpRendering copy(*original);
  HttpRendering assigned(Decision{}, kT0);
  assigned = *original;
  const std::string body(original->body());
  original.reset();
  const auto check = [&](const HttpRendering& r) {
    CHECK(r.status() == 429);
    CHECK(HeadersOf(r) == expected);
    CHECK(r.body() == body);
  };
  check(copy);
  check(assigned);
}

TEST_CASE("HttpErrorType maps statuses", "[http]") {
  CHECK(HttpErrorType(400) == "invalid_request_error");
  CHECK(HttpErrorType(402) == "insufficient_quota");
  CHECK(HttpErrorType(403) == "permission_denied");
  CHECK(HttpErrorType(429) == "rate_limit_exceeded");
  CHECK(HttpErrorType(404) == "server_error");
  CHECK(HttpErrorType(503) == "server_error");
}

}  // namespace
}  // namespace plangate::testing
