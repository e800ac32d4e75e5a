// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "trace.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "plangate/catalog.h"
#include "replay.h"

namespace plangate::replay {
namespace {

constexpr char kCatalog[] = R"json({
  "version": 1,
  "meters": ["requests", "tokens"],
  "upgrade_order": ["free", "pro"],
  "plans": [
    {"id": "free", "limits": [
       {"id": "monthly", "limit": 10, "grace": 0.2},
       {"id": "tokens", "meter": "tokens", "limit": 1000},
       {"id": "per_user", "scope": "user", "window": "day",
        "limit": "unlimited"}],
     "features": ["basic"],
     "gauges": {"projects": 2}},
    {"id": "pro", "limits": [{"id": "monthly", "limit": 100}],
     "features": ["basic", "sso"]}
  ]
})json";

std::shared_ptr<const Catalog> TestCatalog() {
  auto catalog = Catalog::Parse(kCatalog);
  REQUIRE(catalog.ok());
  return *catalog;
}

std::string ErrorOf(const absl::Status& status) {
  return std::string(status.message());
}

// The accounts file every trace test uses: acme (free) and beta (pro).
std::vector<AccountSpec> TwoAccounts(const Catalog& catalog) {
  auto accounts = ParseAccounts(R"([
    {"id": "acme", "plan": "free", "anchor": "2026-01-01T00:00:00Z"},
    {"id": "beta", "plan": "pro", "anchor": 1767225600000}
  ])",
                                "accounts.json", catalog);
  REQUIRE(accounts.ok());
  return *accounts;
}

// The one error a one-line trace gives, or "" when it parses.
std::string TraceError(const std::string& line) {
  auto catalog = TestCatalog();
  auto events =
      ParseTrace(line, "trace.jsonl", *catalog, TwoAccounts(*catalog));
  return events.ok() ? "" : ErrorOf(events.status());
}

std::string AccountsError(const std::string& text) {
  auto catalog = TestCatalog();
  auto accounts = ParseAccounts(text, "accounts.json", *catalog);
  return accounts.ok() ? "" : ErrorOf(accounts.status());
}

TEST_CASE("RFC 3339 times parse to Unix ms and format back", "[time]") {
  CHECK(ParseRfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(ParseRfc3339("2026-01-31T00:00:00Z") == 1'769'817'600'000);
  CHECK(ParseRfc3339("2026-01-31t00:00:00z") == 1'769'817'600'000);
  CHECK(ParseRfc3339("2026-01-31T00:00:00+00:00") == 1'769'817'600'000);
  CHECK(ParseRfc3339("2026-01-31T00:00:00.5Z") == 1'769'817'600'500);
  CHECK(ParseRfc3339("2026-01-31T00:00:00.123Z") == 1'769'817'600'123);
  CHECK(ParseRfc3339("2028-02-29T23:59:59Z").has_value());
  CHECK(ParseRfc3339("9999-12-31T23:59:59.999Z") == kMaxTimeMs);
  for (const char* bad :
       {"", "2026-01-31", "2026-01-31T00:00:00", "2026-01-31 00:00:00Z",
        "2026-01-31T00:00:00+01:00", "2027-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-01-32T00:00:00Z", "2026-01-31T24:00:00Z",
        "2026-01-31T00:60:00Z", "2026-01-31T00:00:60Z", "1969-12-31T23:59:59Z",
        "2026-01-31T00:00:00.Z", "2026-01-31T00:00:00.1234Z",
        "2026-01-31T00:00:00ZZ", "+2026-01-31T00:00:00Z",
        "2026-1-31T00:00:00Z"}) {
    INFO(bad);
    CHECK_FALSE(ParseRfc3339(bad).has_value());
  }
  CHECK(FormatRfc3339(1'769'817'600'000) == "2026-01-31T00:00:00Z");
  CHECK(FormatRfc3339(1'769'817'600'007) == "2026-01-31T00:00:00.007Z");
  CHECK(ParseRfc3339(FormatRfc3339(1'234'567'890'123)) == 1'234'567'890'123);
}

TEST_CASE("accounts: every field", "[accounts]") {
  auto catalog = TestCatalog();
  auto accounts = ParseAccounts(R"([
    {"id": "acme", "plan": "free", "anchor": "2026-01-31T00:00:00Z",
     "state": "past_due", "past_due_until": 1769817600000,
     "default_model": "gpt-4o", "wallet_micros": 5000000,
     "scheduled_plan": "pro",
     "overrides": [{"limit_id": "per_user", "user": "bob", "limit": 5,
                    "grace": 0.5},
                   {"limit_id": "monthly", "limit": "unlimited"}]},
    {"id": "beta", "plan": "pro", "anchor": 0, "state": "blocked"}
  ])",
                                "accounts.json", *catalog);
  REQUIRE(accounts.ok());
  REQUIRE(accounts->size() == 2);
  const AccountSpec& a = (*accounts)[0];
  CHECK(a.line == 2);
  CHECK(a.id == "acme");
  CHECK(a.plan == "free");
  CHECK(a.anchor_ms == 1'769'817'600'000);
  CHECK(a.state == SubscriptionState::kPastDue);
  CHECK(a.past_due_until_ms == 1'769'817'600'000);
  CHECK(a.default_model == "gpt-4o");
  CHECK(a.wallet_micros == 5'000'000);
  CHECK(a.scheduled_plan == "pro");
  REQUIRE(a.overrides.size() == 2);
  CHECK(a.overrides[0].limit_id == "per_user");
  CHECK(a.overrides[0].user_id == "bob");
  CHECK(a.overrides[0].limit == 5);
  CHECK(a.overrides[0].grace == 0.5);
  CHECK(a.overrides[1].unlimited);
  CHECK(a.overrides[1].grace < 0);
  CHECK((*accounts)[1].line == 9);
  CHECK((*accounts)[1].state == SubscriptionState::kBlocked);
  CHECK(ParseAccounts("[]", "a.json", *catalog)->empty());
}

TEST_CASE("accounts: every malformed input names FILE:LINE: field",
          "[accounts]") {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"",
       "accounts.json:1: accounts: invalid JSON at column 1: syntax "
       "error while parsing value - unexpected end of input; expected "
       "'[', '{', or a literal"},
      {"[\n  {\"id\": \"a\",\n   \"plan\": }\n]",
       "accounts.json:3: accounts: invalid JSON at column 12: syntax error "
       "while parsing value - unexpected '}'; expected '[', '{', or a "
       "literal"},
      {"{}", "accounts.json:1: accounts: must be a JSON array of accounts"},
      {"[\n 5\n]", "accounts.json:2: accounts[0]: must be a JSON object"},
      {"[\n {\"plan\": \"free\", \"anchor\": 0}]",
       "accounts.json:2: accounts[0].id: missing required field"},
      {"[{\"id\": \"a\", \"anchor\": 0}]",
       "accounts.json:1: accounts[0].plan: missing required field"},
      {"[{\"id\": \"a\", \"plan\": \"free\"}]",
       "accounts.json:1: accounts[0].anchor: missing required field"},
      {"[{\"id\": \"\", \"plan\": \"free\", \"anchor\": 0}]",
       "accounts.json:1: accounts[0].id: must be a non-empty string"},
      {"[{\"id\": \"a\", \"plan\": \"gold\", \"anchor\": 0}]",
       "accounts.json:1: accounts[0].plan: unknown plan \"gold\""},
      {"[{\"id\": \"a\", \"plan\": \"free\",\n  \"anchor\": \"yesterday\"}]",
       "accounts.json:2: accounts[0].anchor: must be an integer (ms) or an "
       "RFC 3339 UTC time"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": -1}]",
       "accounts.json:1: accounts[0].anchor: must be in [0, "
       "253402300799999] (ms)"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 1.5}]",
       "accounts.json:1: accounts[0].anchor: must be an integer (ms) or an "
       "RFC 3339 UTC time"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"state\": \"late\"}]",
       "accounts.json:1: accounts[0].state: must be one of active, "
       "past_due, blocked (got \"late\")"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"state\": \"past_due\"}]",
       "accounts.json:1: accounts[0].past_due_until: missing: required "
       "with state past_due"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"past_due_until\": 5}]",
       "accounts.json:1: accounts[0].past_due_until: only allowed with "
       "state past_due"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"wallet_micros\": -5}]",
       "accounts.json:1: accounts[0].wallet_micros: must be a non-negative "
       "integer"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"default_model\": 4}]",
       "accounts.json:1: accounts[0].default_model: must be a string"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"scheduled_plan\": \"gold\"}]",
       "accounts.json:1: accounts[0].scheduled_plan: unknown plan \"gold\""},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"colour\": 1}]",
       "accounts.json:1: accounts[0].colour: unknown field"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0,\n"
       "  \"plan\": \"pro\"}]",
       "accounts.json:2: accounts[0].plan: duplicate key"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0},\n"
       " {\"id\": \"a\", \"plan\": \"pro\", \"anchor\": 0}]",
       "accounts.json:2: accounts[1].id: duplicate account \"a\" (also "
       "accounts[0])"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"overrides\": {}}]",
       "accounts.json:1: accounts[0].overrides: must be an array of "
       "overrides"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0,\n"
       "  \"overrides\": [\n    {\"limit_id\": \"nope\", \"limit\": 1}]}]",
       "accounts.json:3: accounts[0].overrides[0].limit_id: no limit "
       "\"nope\" in plan \"free\""},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"overrides\": [{\"limit_id\": \"monthly\", \"user\": \"bob\", "
       "\"limit\": 1}]}]",
       "accounts.json:1: accounts[0].overrides[0].user: limit \"monthly\" "
       "is not a user-scope limit"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"overrides\": [{\"limit_id\": \"monthly\", \"limit\": \"lots\"}]}]",
       "accounts.json:1: accounts[0].overrides[0].limit: must be an "
       "integer in [0, 4398046511103] or \"unlimited\""},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"overrides\": [{\"limit_id\": \"monthly\"}]}]",
       "accounts.json:1: accounts[0].overrides[0].limit: missing required "
       "field"},
      {"[{\"id\": \"a\", \"plan\": \"free\", \"anchor\": 0, "
       "\"overrides\": [{\"limit_id\": \"monthly\", \"limit\": 1, "
       "\"grace\": 2}]}]",
       "accounts.json:1: accounts[0].overrides[0].grace: must be in [0, 1]"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(AccountsError(c.text) == c.error);
  }
}

TEST_CASE("accounts: all problems, sorted by line", "[accounts]") {
  CHECK(AccountsError("[\n"
                      " {\"id\": \"a\", \"plan\": \"gold\", \"anchor\": 0},\n"
                      " {\"id\": \"b\", \"plan\": \"free\", \"anchor\": \"x\"}"
                      "\n]") ==
        "accounts.json:2: accounts[0].plan: unknown plan \"gold\"\n"
        "accounts.json:3: accounts[1].anchor: must be an integer (ms) or an "
        "RFC 3339 UTC time");
}

TEST_CASE("trace: every field of every type", "[trace]") {
  auto catalog = TestCatalog();
  const std::string text =
      "# a comment\n"
      "\n"
      "   \t\n"
      "{\"t\": \"2026-01-01T00:00:00Z\", \"id\": \"r1\", \"account\": "
      "\"acme\", \"key\": \"k1\", \"kind\": \"sandbox\", \"user\": \"u1\", "
      "\"project\": \"p1\", \"model\": \"gpt-4o-mini\", \"byok\": true, "
      "\"features\": [\"basic\"], \"amounts\": {\"tokens\": 500}, "
      "\"wallet_micros\": 7, \"outcome\": \"failure\", \"actual\": "
      "{\"tokens\": 320}, \"expect\": {\"status\": 402, \"reason\": \"x\", "
      "\"warnings\": [\"grace\", \"past_due\"], \"upgrade_plan\": \"pro\", "
      "\"limit\": \"monthly\", \"used\": 1, \"remaining\": 2, "
      "\"retry_after_ms\": 3, \"wallet_balance\": 4}}\r\n"
      "{\"t\": 1767225600000, \"type\": \"plan_change\", \"account\": "
      "\"acme\", \"plan\": \"pro\", \"scheduled_plan\": \"\", "
      "\"overrides\": []}\n"
      "{\"t\": 1767225600001, \"type\": \"payment_failed\", \"account\": "
      "\"acme\", \"grace_until\": \"2026-01-02T00:00:00Z\"}\n"
      "{\"t\": 1767225600002, \"type\": \"payment_succeeded\", "
      "\"account\": \"acme\"}\n"
      "{\"t\": 1767225600003, \"type\": \"block\", \"account\": \"beta\"}\n"
      "{\"t\": 1767225600004, \"type\": \"wallet_credit\", \"account\": "
      "\"beta\", \"micros\": -5}\n"
      "{\"t\": 1767225600005, \"type\": \"create\", \"id\": \"c\", "
      "\"account\": \"nobody\", \"gauge\": \"projects\", \"current\": 2, "
      "\"expect\": {\"status\": 200}}\n"
      "{\"t\": 1767225600005, \"type\": \"maintain\"}\n"
      "{\"t\": 1767225600006, \"account\": \"nobody\"}";
  auto events = ParseTrace(text, "t.jsonl", *catalog, TwoAccounts(*catalog));
  REQUIRE(events.ok());
  REQUIRE(events->size() == 9);
  const Event& r = (*events)[0];
  CHECK(r.line == 4);
  CHECK(r.t_ms == 1'767'225'600'000);
  CHECK(r.type == EventType::kRequest);
  CHECK(r.id == "r1");
  CHECK(r.account == "acme");
  CHECK(r.key == "k1");
  CHECK(r.kind == KeyKind::kTest);
  CHECK(r.user == "u1");
  CHECK(r.project == "p1");
  CHECK(r.model == "gpt-4o-mini");
  CHECK(r.byok);
  CHECK(r.features == std::vector<std::string>{"basic"});
  REQUIRE(r.amounts.size() == 1);
  CHECK(r.amounts[0].meter == 1);
  CHECK(r.amounts[0].amount == 500);
  CHECK(r.wallet_micros == 7);
  CHECK_FALSE(r.success);
  REQUIRE(r.actual.size() == 1);
  CHECK(r.actual[0].amount == 320);
  CHECK(r.expect.status == 402);
  CHECK(r.expect.reason == "x");
  CHECK(r.expect.warnings == (kWarnGrace | kWarnPastDue));
  CHECK(r.expect.upgrade_plan == "pro");
  CHECK(r.expect.limit == "monthly");
  CHECK(r.expect.used == 1);
  CHECK(r.expect.remaining == 2);
  CHECK(r.expect.retry_after_ms == 3);
  CHECK(r.expect.wallet_balance == 4);
  CHECK(r.expect.count() == 9);

  const Event& change = (*events)[1];
  CHECK(change.type == EventType::kPlanChange);
  CHECK(change.plan == "pro");
  CHECK(change.scheduled_plan == "");
  CHECK(change.overrides.has_value());
  CHECK((*events)[2].grace_until_ms == 1'767'312'000'000);
  CHECK((*events)[3].type == EventType::kPaymentSucceeded);
  CHECK((*events)[4].type == EventType::kBlock);
  CHECK((*events)[5].micros == -5);
  CHECK((*events)[6].gauge == "projects");
  CHECK((*events)[6].current == 2);
  CHECK((*events)[6].account == "nobody");  // a decision, not an error
  CHECK((*events)[7].type == EventType::kMaintain);
  CHECK((*events)[8].line == 12);
  CHECK((*events)[8].kind == KeyKind::kLive);
  CHECK((*events)[8].success);
  CHECK((*events)[8].expect.empty());
}

TEST_CASE("trace: every malformed line names FILE:LINE: field", "[trace]") {
  struct Case {
    const char* line;
    const char* error;
  };
  const Case cases[] = {
      {"{\"t\": 0, \"account\": \"acme\"",
       "trace.jsonl:1: event: invalid JSON at column 27: syntax error while "
       "parsing object - unexpected end of input; expected '}'"},
      {"[1]", "trace.jsonl:1: event: must be a JSON object"},
      {"{\"account\": \"acme\"}", "trace.jsonl:1: t: missing required field"},
      {"{\"t\": \"noon\", \"account\": \"acme\"}",
       "trace.jsonl:1: t: must be an integer (ms) or an RFC 3339 UTC time"},
      {"{\"t\": 1.5, \"account\": \"acme\"}",
       "trace.jsonl:1: t: must be an integer (ms) or an RFC 3339 UTC time"},
      {"{\"t\": -1, \"account\": \"acme\"}",
       "trace.jsonl:1: t: must be in [0, 253402300799999] (ms)"},
      {"{\"t\": 18446744073709551615, \"account\": \"acme\"}",
       "trace.jsonl:1: t: must be in [0, 253402300799999] (ms)"},
      {"{\"t\": 0}", "trace.jsonl:1: account: missing required field"},
      {"{\"t\": 0, \"account\": 5}",
       "trace.jsonl:1: account: must be a non-empty string"},
      {"{\"t\": 0, \"account\": \"acme\", \"type\": \"refund\"}",
       "trace.jsonl:1: type: must be one of request, plan_change, "
       "payment_failed, payment_succeeded, block, wallet_credit, create, "
       "maintain (got \"refund\")"},
      {"{\"t\": 0, \"account\": \"acme\", \"colour\": 1}",
       "trace.jsonl:1: colour: unknown field"},
      {"{\"t\": 0, \"account\": \"acme\", \"my field\": 1}",
       "trace.jsonl:1: [\"my field\"]: unknown field"},
      {"{\"t\": 0, \"account\": \"acme\", \"plan\": \"pro\"}",
       "trace.jsonl:1: plan: not a field of type request"},
      {"{\"t\": 0, \"account\": \"acme\", \"account\": \"beta\"}",
       "trace.jsonl:1: account: duplicate key"},
      {"{\"t\": 0, \"account\": \"acme\", \"kind\": \"prod\"}",
       "trace.jsonl:1: kind: must be one of live, test, sandbox, internal "
       "(got \"prod\")"},
      {"{\"t\": 0, \"account\": \"acme\", \"byok\": 1}",
       "trace.jsonl:1: byok: must be true or false"},
      {"{\"t\": 0, \"account\": \"acme\", \"model\": null}",
       "trace.jsonl:1: model: must be a string"},
      {"{\"t\": 0, \"account\": \"acme\", \"features\": \"sso\"}",
       "trace.jsonl:1: features: must be an array of feature names"},
      {"{\"t\": 0, \"account\": \"acme\", \"features\": [\"sso\", \"\"]}",
       "trace.jsonl:1: features[1]: must be a non-empty string"},
      {"{\"t\": 0, \"account\": \"acme\", \"amounts\": [500]}",
       "trace.jsonl:1: amounts: must be an object of meter name -> amount"},
      {"{\"t\": 0, \"account\": \"acme\", \"amounts\": {\"tokns\": 5}}",
       "trace.jsonl:1: amounts.tokns: unknown meter \"tokns\" (meters: "
       "requests, tokens)"},
      {"{\"t\": 0, \"account\": \"acme\", \"amounts\": {\"tokens\": -5}}",
       "trace.jsonl:1: amounts.tokens: must be a non-negative integer"},
      {"{\"t\": 0, \"account\": \"acme\", \"amounts\": {\"tokens\": 2.5}}",
       "trace.jsonl:1: amounts.tokens: must be a non-negative integer"},
      {"{\"t\": 0, \"account\": \"acme\", \"amounts\": {\"tokens\": "
       "4398046511104}}",
       "trace.jsonl:1: amounts.tokens: must be <= 4398046511103"},
      {"{\"t\": 0, \"account\": \"acme\", \"actual\": {\"cost\": 1}}",
       "trace.jsonl:1: actual.cost: unknown meter \"cost\" (meters: "
       "requests, tokens)"},
      {"{\"t\": 0, \"account\": \"acme\", \"wallet_micros\": \"5\"}",
       "trace.jsonl:1: wallet_micros: must be a non-negative integer"},
      {"{\"t\": 0, \"account\": \"acme\", \"outcome\": \"ok\"}",
       "trace.jsonl:1: outcome: must be one of success, failure (got "
       "\"ok\")"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": 200}",
       "trace.jsonl:1: expect: must be a JSON object"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"status\": 42}}",
       "trace.jsonl:1: expect.status: must be in [100, 599]"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"warnings\": "
       "[\"grace\", \"nudge\"]}}",
       "trace.jsonl:1: expect.warnings[1]: must be one of soft_nudge, grace, "
       "shadow_denied, past_due (got \"nudge\")"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"warnings\": "
       "\"grace\"}}",
       "trace.jsonl:1: expect.warnings: must be an array of warning names"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"reason\": 402}}",
       "trace.jsonl:1: expect.reason: must be a string"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"staus\": 402}}",
       "trace.jsonl:1: expect.staus: unknown field"},
      {"{\"t\": 0, \"account\": \"acme\", \"expect\": {\"used\": -1}}",
       "trace.jsonl:1: expect.used: must be a non-negative integer"},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"acme\"}",
       "trace.jsonl:1: plan: missing: a plan_change needs plan, "
       "scheduled_plan or overrides"},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"acme\", "
       "\"plan\": \"gold\"}",
       "trace.jsonl:1: plan: unknown plan \"gold\""},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"acme\", "
       "\"plan\": \"\"}",
       "trace.jsonl:1: plan: must be a non-empty string"},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"acme\", "
       "\"overrides\": [{\"limit\": 1}]}",
       "trace.jsonl:1: overrides[0].limit_id: missing required field"},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"ghost\", "
       "\"plan\": \"pro\"}",
       "trace.jsonl:1: account: unknown account \"ghost\" (not in the "
       "accounts file)"},
      {"{\"t\": 0, \"type\": \"plan_change\", \"account\": \"acme\", "
       "\"plan\": \"pro\", \"expect\": {}}",
       "trace.jsonl:1: expect: not a field of type plan_change"},
      {"{\"t\": 0, \"type\": \"payment_failed\", \"account\": \"acme\"}",
       "trace.jsonl:1: grace_until: missing required field"},
      {"{\"t\": 0, \"type\": \"payment_failed\", \"account\": \"acme\", "
       "\"grace_until\": \"soon\"}",
       "trace.jsonl:1: grace_until: must be an integer (ms) or an RFC 3339 "
       "UTC time"},
      {"{\"t\": 0, \"type\": \"wallet_credit\", \"account\": \"acme\"}",
       "trace.jsonl:1: micros: missing required field"},
      {"{\"t\": 0, \"type\": \"wallet_credit\", \"account\": \"acme\", "
       "\"micros\": 1e3}",
       "trace.jsonl:1: micros: must be an integer"},
      {"{\"t\": 0, \"type\": \"create\", \"account\": \"acme\", \"gauge\": "
       "\"projects\"}",
       "trace.jsonl:1: current: missing required field"},
      {"{\"t\": 0, \"type\": \"create\", \"account\": \"acme\", \"gauge\": "
       "\"\", \"current\": 1}",
       "trace.jsonl:1: gauge: must be a non-empty string"},
      {"{\"t\": 0, \"type\": \"maintain\", \"account\": \"acme\"}",
       "trace.jsonl:1: account: not a field of type maintain"},
  };
  for (const Case& c : cases) {
    INFO(c.line);
    CHECK(TraceError(c.line) == c.error);
  }
}

TEST_CASE("trace: time must not go back; errors name their lines", "[trace]") {
  CHECK(TraceError("{\"t\": \"2026-01-01T00:00:02Z\", \"account\": \"a\"}\n"
                   "# comment\n"
                   "{\"t\": \"2026-01-01T00:00:02Z\", \"account\": \"a\"}\n"
                   "{\"t\": \"2026-01-01T00:00:01Z\", \"account\": \"a\"}\n"
                   "{\"t\": 7, \"account\": 1}") ==
        "trace.jsonl:4: t: goes back in time: 2026-01-01T00:00:01Z is before "
        "2026-01-01T00:00:02Z (line 3)\n"
        "trace.jsonl:5: t: goes back in time: 1970-01-01T00:00:00.007Z is "
        "before 2026-01-01T00:00:02Z (line 3)\n"
        "trace.jsonl:5: account: must be a non-empty string");
}

TEST_CASE("trace: the error list stops after 100", "[trace]") {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "nope\n";
  const std::string error = TraceError(text);
  CHECK(error.find("trace.jsonl:100: event: invalid JSON") !=
        std::string::npos);
  CHECK(error.find("trace.jsonl:101:") == std::string::npos);
  CHECK(error.substr(error.rfind('\n') + 1) ==
        "trace.jsonl: too many errors; stopped after 100");
}

TEST_CASE("errors quote at most about 80 bytes of the input",
          "[trace][accounts]") {
  const std::string huge(10 << 20, 'a');  // 10 MiB
  // A syntax error inside a 10 MB string of a trace line.
  const std::string syntax =
      TraceError(R"({"t": 0, "account": ")" + huge + "\x01\"}");
  CHECK(syntax.size() < 400);
  CHECK(syntax ==
        "trace.jsonl:1: event: invalid JSON at column 10485782: syntax error "
        "while parsing value - invalid string: control character U+0001 "
        "(SOH) must be escaped to \\u0001; last read: '\"" +
            std::string(79, 'a') + "...' (10485769 bytes)");
  // The same in an accounts file, and a 10 MB plan name.
  const std::string accounts =
      AccountsError(R"([{"id": "x", "plan": ")" + huge + "\x01\"}]");
  CHECK(accounts.size() < 400);
  CHECK(accounts.find("...' (10485769 bytes)") != std::string::npos);
  CHECK(AccountsError(R"([{"id": "x", "anchor": 0, "plan": ")" + huge +
                      R"("}])") == R"(accounts.json:1: accounts[0].plan: )"
                                   R"(unknown plan ")" +
                                       std::string(80, 'a') +
                                       R"(..." (10485760 bytes))");
  // A 10 MB unknown field: its path is cut too.
  const std::string field =
      TraceError(R"({"t": 0, "account": "acme", ")" + huge + R"(": 1})");
  CHECK(field.size() < 400);
  CHECK(field == R"(trace.jsonl:1: [")" + std::string(80, 'a') +
                     R"(..." (10485760 bytes)]: unknown field)");
}

TEST_CASE("parsers survive arbitrary bytes", "[trace][accounts]") {
  auto catalog = TestCatalog();
  const std::vector<AccountSpec> accounts = TwoAccounts(*catalog);
  std::mt19937 rng(42);
  const std::string alphabet = "{}[]\":,\\ \n\t0123456789.-eEtruflsnabcz#\x80";
  const std::string deep(100'000, '[');
  for (const std::string& fixed :
       {deep, "{\"t\":0,\"account\":\"acme\",\"amounts\":" + deep,
        std::string("\0\xff\xfe", 3), std::string("{\"t\": \"\xc3\x28\"}")}) {
    (void)ParseTrace(fixed, "t", *catalog, accounts);
    (void)ParseAccounts(fixed, "a", *catalog);
  }
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 64, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    auto events = ParseTrace(s, "t", *catalog, accounts);
    auto parsed = ParseAccounts(s, "a", *catalog);
    if (!events.ok()) {
      CHECK(ErrorOf(events.status()).rfind("t:", 0) == 0);
    }
    if (!parsed.ok()) {
      CHECK(ErrorOf(parsed.status()).rfind("a:", 0) == 0);
    }
  }
}

// Replays `trace` against kCatalog and TwoAccounts; returns the decision
// lines, one per line.
std::string ReplayText(const std::string& trace, ReplaySummary* summary,
                       bool check = true) {
  auto catalog = TestCatalog();
  const std::vector<AccountSpec> accounts = TwoAccounts(*catalog);
  auto events = ParseTrace(trace, "t.jsonl", *catalog, accounts);
  REQUIRE(events.ok());
  std::string out;
  ReplayOptions options;
  options.trace_name = "t.jsonl";
  options.check = check;
  options.on_decision = [&out](std::string_view line) {
    out.append(line);
    out += '\n';
  };
  auto result = Replay(catalog, accounts, *events, options);
  REQUIRE(result.ok());
  *summary = *result;
  return out;
}

TEST_CASE("replay: decision lines, grace, refunds, settle", "[replay]") {
  ReplaySummary summary;
  std::string trace;
  // monthly: 10, grace 0.2 (hard 12), soft nudge at 8.
  for (int i = 0; i < 13; ++i) {
    trace += R"({"t": "2026-01-02T00:00:00Z", "account": "acme"})";
    trace += '\n';
  }
  const std::string out = ReplayText(trace, &summary);
  const std::vector<std::string> lines = [&] {
    std::vector<std::string> v;
    size_t pos = 0;
    while (pos < out.size()) {
      const size_t end = out.find('\n', pos);
      v.push_back(out.substr(pos, end - pos));
      pos = end + 1;
    }
    return v;
  }();
  REQUIRE(lines.size() == 13);
  CHECK(lines[0] ==
        R"({"line":1,"t":1767312000000,"account":"acme","status":200,)"
        R"("reason":"","warnings":[],"limit":"monthly","used":0,)"
        R"("remaining":11,"retry_after_ms":0,"upgrade_plan":""})");
  CHECK(lines[7].find(R"("warnings":["soft_nudge"])") != std::string::npos);
  CHECK(lines[10].find(R"("warnings":["grace"])") != std::string::npos);
  CHECK(lines[12] ==
        R"({"line":13,"t":1767312000000,"account":"acme","status":402,)"
        R"("reason":"billing_limit_reached","warnings":[],)"
        R"("limit":"monthly","used":12,"remaining":0,)"
        R"("retry_after_ms":2592000000,"upgrade_plan":"pro"})");
  const Tally& acme = summary.accounts.at("acme");
  CHECK(acme.decisions == 13);
  CHECK(acme.admitted == 12);
  CHECK(acme.warned == 5);
  CHECK(acme.soft_nudge == 3);
  CHECK(acme.grace == 2);
  CHECK(acme.denied == 1);
  CHECK(acme.denials.at({402, "billing_limit_reached"}) == 1);

  // A failure refunds; actual amounts settle an estimate.
  const std::string settle =
      R"({"t": 0, "account": "acme", "amounts": {"tokens": 900},)"
      R"( "outcome": "failure"})"
      "\n"
      R"({"t": 0, "account": "acme", "amounts": {"tokens": 900},)"
      R"( "actual": {"tokens": 100}})"
      "\n"
      R"({"t": 0, "account": "acme", "amounts": {"tokens": 700},)"
      R"( "expect": {"status": 200, "limit": "tokens", "used": 100,)"
      R"( "warnings": ["soft_nudge"]}})"
      "\n";
  ReplayText(settle, &summary);
  CHECK(summary.refunded == 1);
  CHECK(summary.mismatches.empty());
  CHECK(summary.expectations == 4);
}

TEST_CASE("replay: check reports each mismatched field", "[replay]") {
  ReplaySummary summary;
  ReplayText(R"({"t": 0, "account": "acme", "expect": {"status": 402,)"
             R"( "reason": "x", "warnings": ["grace"], "upgrade_plan": "pro",)"
             R"( "limit": "tokens", "used": 5, "wallet_balance": 1}})"
             "\n"
             R"({"t": 0, "account": "ghost", "expect": {"status": 200}})"
             "\n"
             R"({"t": 0, "account": "acme", "features": ["sso"],)"
             R"( "expect": {"status": 402, "reason": "feature_not_in_plan",)"
             R"( "upgrade_plan": "pro"}})",
             &summary);
  CHECK(summary.expectations == 11);
  CHECK(
      summary.mismatches ==
      std::vector<std::string>{
          "t.jsonl:1: expected status 402, got 200 (admitted, warnings [])",
          "t.jsonl:1: expected reason \"x\", got \"\" (status 200)",
          "t.jsonl:1: expected warnings [grace], got [] (status 200)",
          "t.jsonl:1: expected upgrade_plan \"pro\", got \"\" (200 (admitted, "
          "warnings []))",
          "t.jsonl:1: expected limit \"tokens\", got \"monthly\" (200 "
          "(admitted, warnings []))",
          "t.jsonl:1: expected used 5, got 0 (200 (admitted, warnings []))",
          "t.jsonl:1: expected wallet_balance 1, got 0",
          "t.jsonl:2: expected status 200, got 403 (reason unknown_account)",
      });
  CHECK(summary.accounts.at("ghost").denials.at({403, "unknown_account"}) == 1);
  // Without check nothing is compared.
  ReplayText(R"({"t": 0, "account": "acme", "expect": {"status": 402}})",
             &summary, /*check=*/false);
  CHECK(summary.mismatches.empty());
  CHECK(summary.expectations == 0);
}

TEST_CASE("replay: account events and creates", "[replay]") {
  ReplaySummary summary;
  const std::string out = ReplayText(
      // acme (free) schedules pro at the end of January.
      R"({"t": "2026-01-10T00:00:00Z", "type": "plan_change",)"
      R"( "account": "acme", "scheduled_plan": "pro"})"
      "\n"
      R"({"t": "2026-01-31T23:59:59Z", "account": "acme",)"
      R"( "features": ["sso"], "expect": {"status": 402}})"
      "\n"
      R"({"t": "2026-02-01T00:00:00Z", "account": "acme",)"
      R"( "features": ["sso"], "expect": {"status": 200}})"
      "\n"
      // A later state change keeps the plan the schedule gave.
      R"({"t": "2026-02-02T00:00:00Z", "type": "payment_failed",)"
      R"( "account": "acme", "grace_until": "2026-02-03T00:00:00Z"})"
      "\n"
      R"({"t": "2026-02-02T00:00:01Z", "account": "acme",)"
      R"( "features": ["sso"], "expect": {"status": 200,)"
      R"( "warnings": ["past_due"]}})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "account": "acme",)"
      R"( "expect": {"status": 402, "reason": "payment_required"}})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "payment_succeeded",)"
      R"( "account": "acme"})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "account": "acme",)"
      R"( "expect": {"status": 200, "warnings": []}})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "block", "account": "beta"})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "account": "beta",)"
      R"( "expect": {"status": 402, "reason": "payment_required"}})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "wallet_credit",)"
      R"( "account": "beta", "micros": 500})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "maintain"})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "plan_change",)"
      R"( "account": "beta", "plan": "free"})"
      "\n"
      R"({"t": "2026-02-03T00:00:00Z", "type": "create", "id": "p3",)"
      R"( "account": "beta", "gauge": "projects", "current": 2,)"
      R"( "expect": {"status": 402, "reason": "resource_limit_reached"}})",
      &summary);
  CHECK(summary.mismatches == std::vector<std::string>{});
  CHECK(summary.events == 14);
  CHECK(summary.requests == 6);
  CHECK(summary.creates == 1);
  CHECK(out.substr(out.rfind('{')) ==
        R"({"line":14,"t":1770076800000,"type":"create","id":"p3",)"
        R"("account":"beta","gauge":"projects","status":402,)"
        R"("reason":"resource_limit_reached","warnings":[],"limit":"",)"
        R"("used":2,"remaining":0,"retry_after_ms":0,"upgrade_plan":"pro"})"
        "\n");
}

TEST_CASE("replay: a failing account event stops with FILE:LINE", "[replay]") {
  auto catalog = TestCatalog();
  const std::vector<AccountSpec> accounts = TwoAccounts(*catalog);
  auto events = ParseTrace(
      "{\"t\": 0, \"account\": \"acme\"}\n"
      "{\"t\": 0, \"type\": \"wallet_credit\", \"account\": \"acme\", "
      "\"micros\": -1}",
      "t.jsonl", *catalog, accounts);
  REQUIRE(events.ok());
  ReplayOptions options;
  options.trace_name = "t.jsonl";
  auto result = Replay(catalog, accounts, *events, options);
  REQUIRE_FALSE(result.ok());
  CHECK(ErrorOf(result.status()) ==
        "t.jsonl:2: micros: account \"acme\": a credit of -1 would take the "
        "wallet below zero");
}

TEST_CASE("replay: same input, byte-identical output", "[replay]") {
  std::string trace;
  for (int i = 0; i < 300; ++i) {
    trace += "{\"t\": " + std::to_string(1'767'225'600'000 + i * 7'000) +
             ", \"account\": \"" + (i % 3 ? "acme" : "beta") +
             "\", \"user\": \"u" + std::to_string(i % 5) +
             "\", \"amounts\": {\"tokens\": " + std::to_string(i % 17) + "}}\n";
  }
  ReplaySummary a, b;
  const std::string first = ReplayText(trace, &a);
  const std::string second = ReplayText(trace, &b);
  CHECK(first == second);
  CHECK(FormatSummary(a, true) == FormatSummary(b, true));
}

TEST_CASE("replay: the summary tables", "[replay]") {
  ReplaySummary summary;
  ReplayText(
      "{\"t\": 0, \"account\": \"beta\"}\n"
      "{\"t\": 0, \"account\": \"acme\", \"features\": [\"sso\"]}\n",
      &summary);
  CHECK(FormatSummary(summary, true) ==
        "replayed 2 events: requests 2, creates 0, refunded 0\n"
        "\n"
        "account  decisions  admitted  warned  soft_nudge  grace  past_due  "
        "shadow  denied\n"
        "acme             1         0       0           0      0         0  "
        "     0       1\n"
        "beta             1         1       0           0      0         0  "
        "     0       0\n"
        "total            2         1       0           0      0         0  "
        "     0       1\n"
        "\n"
        "denied  status  reason               count\n"
        "acme       402  feature_not_in_plan      1\n"
        "total      402  feature_not_in_plan      1\n"
        "\n"
        "check: 0 expectations, 0 mismatches\n");
}

}  // namespace
}  // namespace plangate::replay
