// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Per-model usage ("usage_by_model"): the usage report lists each model's
// billing-period usage of the plan's meters without a limit per model, and
// counting it never denies a request.

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/enforcer_test_util.h"
#include "nlohmann/json.hpp"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1,
  "meters": ["requests", "tokens", "cost_micros"],
  "usage_by_model": 2,
  "plans": [
    {"id": "pro", "max_subjects": 3, "limits": [
      {"id": "monthly", "limit": 1000},
      {"id": "tokens", "meter": "tokens", "limit": 100000},
      {"id": "spend", "meter": "cost_micros", "limit": "unlimited"},
      {"id": "per_project", "scope": "project", "window": "day",
       "limit": 100}]},
    {"id": "plain", "usage_by_model": false, "limits": [
      {"id": "monthly", "limit": 1000}]},
    {"id": "bare", "usage_by_model": true},
    {"id": "tight", "max_subjects": 1, "limits": [
      {"id": "monthly", "limit": 1000},
      {"id": "per_project", "scope": "project", "limit": 100}]}]})";

class ModelFixture : public EnforcerFixture {
 public:
  Decision Call(std::string_view model, int64_t tokens, int64_t cost,
                std::string_view project = {}) {
    const MeterAmount amounts[] = {{enforcer_->MeterId("tokens"), tokens},
                                   {enforcer_->MeterId("cost_micros"), cost}};
    return enforcer_->Check({.account_id = "acme",
                             .project_id = project,
                             .model = model,
                             .amounts = amounts});
  }

  CommitResult Settle(const Decision& d, int64_t tokens, int64_t cost,
                      bool success = true) {
    const MeterAmount actual[] = {{enforcer_->MeterId("tokens"), tokens},
                                  {enforcer_->MeterId("cost_micros"), cost}};
    return enforcer_->Commit(
        {.reservation = d.reservation, .success = success, .actual = actual});
  }

  // The model's count of `meter` in the usage report; -1 when the model is
  // not listed. An empty model is the "other" bucket.
  int64_t ModelUsed(std::string_view model, std::string_view meter) {
    auto usage = enforcer_->Usage("acme");
    REQUIRE_OK(usage.status());
    for (const ModelUsage& m : usage->models) {
      if (m.model != model) continue;
      for (const MeterCount& c : m.meters) {
        if (c.meter == meter) return c.used;
      }
      FAIL("model " << model << " has no meter " << meter);
    }
    return -1;
  }
};

TEST_CASE("usage_by_model is validated", "[models]") {
  auto parsed = ParseOrDie(kCatalog);
  CHECK(parsed->FindPlan("pro")->usage_by_model == 2);  // the catalog's
  CHECK(parsed->FindPlan("plain")->usage_by_model == 0);
  CHECK(parsed->FindPlan("bare")->usage_by_model == kDefaultModelsPerAccount);
  for (const char* bad : {"0", "1025", "\"yes\"", "1.5", "-1"}) {
    auto catalog = Catalog::Parse(
        std::string(
            R"({"version": 1, "plans": [{"id": "p", "usage_by_model": )") +
        bad + "}]}");
    INFO(bad);
    REQUIRE_FALSE(catalog.ok());
    CHECK(std::string(catalog.status().message()) ==
          "plans[0].usage_by_model: must be true, false or a number of "
          "models in [1, 1024]");
  }
  auto top = Catalog::Parse(
      R"({"version": 1, "usage_by_model": {}, "plans": [{"id": "p"}]})");
  REQUIRE_FALSE(top.ok());
  CHECK(std::string(top.status().message()).find("usage_by_model: must be") ==
        0);
}

// A plan of `meters` limits of `scope`, one per meter m<first>..., that
// counts by model.
std::string PlanCountingMeters(const std::string& id, int first, int meters,
                               const std::string& scope = "account") {
  std::string json = R"({"id": ")" + id + R"(", "usage_by_model": true,
      "limits": [)";
  for (int i = first; i < first + meters; ++i) {
    json += (i > first ? "," : "") + std::string(R"({"meter": "m)") +
            std::to_string(i) + R"(", "scope": ")" + scope +
            R"(", "limit": 10})";
  }
  return json + "]}";
}

TEST_CASE("per-model meters must fit a record and a reservation", "[models]") {
  // 5 + 5 meters and requests: more than a record's 8 cells.
  auto cells = Enforcer::Create(ParseOrDie(
      R"({"version": 1, "plans": [)" + PlanCountingMeters("a", 0, 5) + "," +
      PlanCountingMeters("b", 5, 5, "project") + "]}"));
  REQUIRE_FALSE(cells.ok());
  CHECK(std::string(cells.status().message()) ==
        "plans[1].usage_by_model: more than 8 meters counted per model across "
        "the catalogs loaded since start");
  // 8 limits and 9 meters: more than a reservation's 16 counters.
  auto ops = Enforcer::Create(ParseOrDie(R"({"version": 1, "plans": [)" +
                                         PlanCountingMeters("a", 0, 8) + "]}"));
  REQUIRE_FALSE(ops.ok());
  CHECK(std::string(ops.status().message()) ==
        "plans[0].usage_by_model: the plan's 8 limits and 9 meters counted "
        "per model exceed 16 counters per request");
}

TEST_CASE_METHOD(ModelFixture, "each model's usage is counted, and settled",
                 "[models]") {
  Start(kCatalog, "pro");
  const Decision a = Call("gpt-4o", 1000, 500);
  REQUIRE(a.admitted());
  REQUIRE_FALSE(a.reservation.empty());
  // Reserved counts show until Commit settles them.
  CHECK(ModelUsed("gpt-4o", "tokens") == 1000);
  CHECK(Settle(a, 1234, 777) == CommitResult::kApplied);
  const Decision b = Call("gpt-4o", 10, 10);
  CHECK(Settle(b, 66, 23) == CommitResult::kApplied);
  const Decision c = Call("gpt-4o-mini", 500, 50);
  CHECK(Settle(c, 400, 40) == CommitResult::kApplied);
  // A failed call is refunded from the model too.
  const Decision failed = Call("gpt-4o-mini", 999, 99);
  CHECK(Settle(failed, 0, 0, false) == CommitResult::kRefunded);

  CHECK(ModelUsed("gpt-4o", "requests") == 2);
  CHECK(ModelUsed("gpt-4o", "tokens") == 1300);
  CHECK(ModelUsed("gpt-4o", "cost_micros") == 800);
  CHECK(ModelUsed("gpt-4o-mini", "requests") == 1);
  CHECK(ModelUsed("gpt-4o-mini", "tokens") == 400);
  CHECK(ModelUsed("gpt-4o-mini", "cost_micros") == 40);
  CHECK(ModelUsed("", "requests") == -1);  // nothing in "other"
  // The limits count the same totals.
  CHECK(Used("tokens") == 1700);
  CHECK(Used("monthly") == 3);

  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK(usage->models_counted);
  const auto json = nlohmann::json::parse(UsageReportJson(*usage));
  CHECK(json["models"]["gpt-4o"]["tokens"] == 1300);
  CHECK(json["models"]["gpt-4o-mini"]["requests"] == 1);
  CHECK(json["other_models"].is_null());

  // A new billing period starts from zero, and the idle records of the
  // last one are reclaimed (the bucket once its models are gone).
  clock_.Advance(int64_t{31} * 86'400'000);
  CHECK(ModelUsed("gpt-4o", "tokens") == -1);
  CHECK(enforcer_->Stats().subjects == 4);  // acme, the bucket, 2 models
  enforcer_->Maintain();
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects == 1);
  CHECK(Settle(Call("gpt-4o", 1, 1), 5, 5) == CommitResult::kApplied);
  CHECK(ModelUsed("gpt-4o", "tokens") == 5);
  CHECK(ModelUsed("gpt-4o-mini", "tokens") == -1);
}

TEST_CASE_METHOD(ModelFixture,
                 "models past the account's count go to the other bucket, and "
                 "nothing is ever denied for want of room",
                 "[models]") {
  Start(kCatalog, "pro");
  CHECK(Settle(Call("a", 1, 1), 1, 1) == CommitResult::kApplied);
  CHECK(Settle(Call("b", 2, 2), 2, 2) == CommitResult::kApplied);
  // usage_by_model is 2: a third model, and requests naming none, count
  // in the bucket.
  CHECK(Settle(Call("c", 4, 4), 4, 4) == CommitResult::kApplied);
  CHECK(Settle(Call("", 8, 8), 8, 8) == CommitResult::kApplied);
  CHECK(ModelUsed("a", "tokens") == 1);
  CHECK(ModelUsed("b", "tokens") == 2);
  CHECK(ModelUsed("c", "tokens") == -1);
  CHECK(ModelUsed("", "tokens") == 12);
  CHECK(ModelUsed("", "requests") == 2);
  CHECK(enforcer_->Stats().model_usage_other == 1);
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  const auto json = nlohmann::json::parse(UsageReportJson(*usage));
  CHECK(json["other_models"]["tokens"] == 12);
  CHECK(json["models"].size() == 2);

  // The models take none of the account's max_subjects (3): three
  // projects fit, and the projects' limits decide as before.
  CHECK(Call("a", 1, 1, "p1").admitted());
  CHECK(Call("a", 1, 1, "p2").admitted());
  CHECK(Call("a", 1, 1, "p3").admitted());
  CHECK(Call("a", 1, 1, "p4").status == 429);  // subject_limit, as ever
  CHECK(enforcer_->Stats().model_usage_skipped == 0);
}

TEST_CASE_METHOD(ModelFixture,
                 "the models an account counts apart are at most its subject "
                 "budget, and take nothing from it",
                 "[models]") {
  Start(kCatalog, "tight");  // max_subjects 1, usage_by_model 2
  CHECK(Settle(Call("a", 1, 1, "only"), 1, 1) == CommitResult::kApplied);
  CHECK(Settle(Call("b", 2, 2, "only"), 2, 2) == CommitResult::kApplied);
  CHECK(ModelUsed("a", "requests") == 1);
  CHECK(ModelUsed("b", "requests") == -1);  // past min(2, 1) models
  CHECK(ModelUsed("", "requests") == 1);
  CHECK(Used("monthly") == 2);
  CHECK(enforcer_->Stats().subject_denials == 0);
}

TEST_CASE_METHOD(ModelFixture,
                 "with no room for the bucket the check is admitted and the "
                 "skip counted",
                 "[models]") {
  // Room for two records: the account and its project.
  Start(kCatalog, "tight", {.max_subjects = 2});
  CHECK(Call("a", 1, 1, "only").admitted());
  CHECK(Call("a", 1, 1, "only").admitted());
  CHECK(enforcer_->Stats().model_usage_skipped == 2);
  CHECK(ModelUsed("a", "requests") == -1);
  CHECK(Used("monthly") == 2);
}

TEST_CASE_METHOD(ModelFixture, "a plan without limits still counts by model",
                 "[models]") {
  Start(kCatalog, "bare");
  const Decision d = Call("gpt-4o", 10, 0);
  REQUIRE(d.admitted());
  CHECK_FALSE(d.reservation.empty());
  CHECK(Settle(d, 42, 0) == CommitResult::kApplied);
  CHECK(ModelUsed("gpt-4o", "requests") == 1);
  // The plan meters nothing else: requests only.
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  REQUIRE(usage->models.size() == 1);
  CHECK(usage->models[0].meters.size() == 1);
}

TEST_CASE_METHOD(ModelFixture, "the option off reports no models", "[models]") {
  Start(kCatalog, "plain");
  const Decision d = Call("gpt-4o", 10, 10);
  CHECK(Settle(d, 10, 10) == CommitResult::kApplied);
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK_FALSE(usage->models_counted);
  CHECK(usage->models.empty());
  const auto json = nlohmann::json::parse(UsageReportJson(*usage));
  CHECK_FALSE(json.contains("models"));
  CHECK_FALSE(json.contains("other_models"));
}

TEST_CASE_METHOD(ModelFixture,
                 "a stream's extensions are settled into its model at commit",
                 "[models]") {
  Start(kCatalog, "pro");
  const Decision d = Call("o3", 100, 0);
  REQUIRE(d.admitted());
  const MeterAmount more[] = {{enforcer_->MeterId("tokens"), 50}};
  CHECK(enforcer_->Extend({.reservation = d.reservation, .amounts = more})
            .admitted());
  CHECK(Used("tokens") == 150);
  CHECK(Settle(d, 180, 9) == CommitResult::kApplied);
  CHECK(Used("tokens") == 180);
  CHECK(ModelUsed("o3", "tokens") == 180);
  CHECK(ModelUsed("o3", "cost_micros") == 9);
}

TEST_CASE_METHOD(ModelFixture, "a reload that keeps the meters keeps counts",
                 "[models]") {
  Start(kCatalog, "pro");
  CHECK(Settle(Call("a", 5, 5), 5, 5) == CommitResult::kApplied);
  REQUIRE_OK(enforcer_->ReloadCatalog(ParseOrDie(kCatalog)));
  CHECK(ModelUsed("a", "tokens") == 5);
  // Moving to a plan without the option stops the report, not the counts.
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme", .plan_id = "plain", .anchor_ms = kJan31_2024}));
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK(usage->models.empty());
}

TEST_CASE_METHOD(ModelFixture, "long model names are counted too", "[models]") {
  Start(kCatalog, "pro");
  // Longer than a record's inline key: stored out of line.
  const std::string long_name(200, 'm');
  CHECK(Settle(Call(long_name, 7, 7), 7, 7) == CommitResult::kApplied);
  CHECK(ModelUsed(long_name, "tokens") == 7);
  // Longer than a record's key may be: the other bucket, and admitted.
  const std::string huge(70000, 'h');
  const Decision d = Call(huge, 5, 5);
  CHECK(d.admitted());
  CHECK(Settle(d, 5, 5) == CommitResult::kApplied);
  CHECK(ModelUsed("", "tokens") == 5);
  CHECK(enforcer_->Stats().model_usage_other == 1);
}

TEST_CASE_METHOD(ModelFixture, "Peek counts nothing by model", "[models]") {
  Start(kCatalog, "pro");
  const MeterAmount amount{0, 1};
  CHECK(
      enforcer_
          ->Peek({.account_id = "acme", .model = "a", .amounts = {&amount, 1}})
          .admitted());
  CHECK(ModelUsed("a", "requests") == -1);
}

TEST_CASE_METHOD(ModelFixture,
                 "threads racing on new models count every check once",
                 "[models][concurrency]") {
  Start(kCatalog, "pro");
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme",
       .plan_id = "pro",
       .anchor_ms = kJan31_2024,
       .overrides = {{.limit_id = "monthly", .unlimited = true}}}));
  constexpr int kThreads = 4;
  constexpr int kChecks = 2000;
  const char* models[] = {"m0", "m1", "m2", "m3", ""};
  const int tokens = enforcer_->MeterId("tokens");
  std::atomic<int> admitted{0};
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kChecks; ++i) {
        const MeterAmount estimate{tokens, 10};
        const Decision d = enforcer_->Check({.account_id = "acme",
                                             .model = models[(i + t) % 5],
                                             .amounts = {&estimate, 1}});
        if (!d.admitted()) continue;
        admitted.fetch_add(1, std::memory_order_relaxed);
        const MeterAmount actual{tokens, 3};
        if (enforcer_->Commit(
                {.reservation = d.reservation, .actual = {&actual, 1}}) ==
            CommitResult::kApplied) {
          applied.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const int total = kThreads * kChecks;
  CHECK(admitted.load() == total);
  CHECK(applied.load() == total);
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  // Two models counted apart (whichever came first), the rest in "other".
  REQUIRE(usage->models.size() == 3);
  CHECK(usage->models[2].model.empty());
  int64_t requests = 0;
  int64_t counted_tokens = 0;
  for (const ModelUsage& m : usage->models) {
    requests += m.meters[0].used;
    counted_tokens += m.meters[1].used;
    // A check racing its model's first sighting may land in "other".
    if (!m.model.empty()) CHECK(m.meters[0].used <= total / 5);
  }
  CHECK(requests == total);
  CHECK(counted_tokens == 3 * total);
  CHECK(Used("tokens") == 3 * total);
  CHECK(enforcer_->Stats().model_usage_skipped == 0);
}

}  // namespace
}  // namespace plangate::testing
