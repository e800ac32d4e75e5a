// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "metering.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "fmt/format.h"

namespace gateway {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kByokFeature = "byok";
constexpr std::array<std::string_view, 1> kByokFeatures = {kByokFeature};

// Finds the few fields ScanReply reports. `depth_` counts the open
// containers (1 inside the top-level object); `field_` is the key whose
// value comes next, when it is one of interest.
class ReplySax final : public nlohmann::json_sax<Json> {
 public:
  explicit ReplySax(ReplyScan* out) : out_(out) {}

  bool null() override { return Scalar(/*is_null=*/true); }
  bool boolean(bool v) override {
    if (depth_ == 2 && in_result_ && field_ == Field::kIsError && v) {
      out_->result_is_error = true;
    }
    return Scalar(false);
  }
  bool number_integer(number_integer_t v) override {
    Number(static_cast<int64_t>(v));
    return Scalar(false);
  }
  bool number_unsigned(number_unsigned_t v) override {
    Number(static_cast<int64_t>(
        std::min<number_unsigned_t>(v, std::numeric_limits<int64_t>::max())));
    return Scalar(false);
  }
  bool number_float(number_float_t, const string_t&) override {
    return Scalar(false);
  }
  bool string(string_t&) override { return Scalar(false); }
  bool binary(binary_t&) override { return Scalar(false); }
  bool start_object(std::size_t) override {
    if (depth_ == 1) {
      if (field_ == Field::kUsage) {
        in_usage_ = true;
        usage_.emplace();
      }
      if (field_ == Field::kResult) in_result_ = true;
    }
    return Open();
  }
  bool start_array(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    field_ = Field::kNone;
    if (depth_ == 1) {
      if (k == "usage") field_ = Field::kUsage;
      if (k == "result") field_ = Field::kResult;
      if (k == "error") field_ = Field::kError;
    } else if (depth_ == 2 && in_usage_) {
      if (k == "prompt_tokens") field_ = Field::kPrompt;
      if (k == "completion_tokens") field_ = Field::kCompletion;
      if (k == "total_tokens") field_ = Field::kTotal;
    } else if (depth_ == 2 && in_result_) {
      if (k == "isError") field_ = Field::kIsError;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

  // After a successful parse: publish the usage, if any.
  void Finish() {
    if (!usage_) return;
    if (usage_->total_tokens == 0) {
      usage_->total_tokens = usage_->prompt_tokens + usage_->completion_tokens;
    }
    out_->usage = usage_;
  }

 private:
  enum class Field {
    kNone,
    kUsage,
    kResult,
    kError,
    kPrompt,
    kCompletion,
    kTotal,
    kIsError,
  };

  // A value starts in the container at depth_: note top-level "result" and
  // non-null "error" members.
  void Begin(bool is_null) {
    if (depth_ == 1) {
      if (field_ == Field::kResult) out_->has_result = true;
      if (field_ == Field::kError && !is_null) out_->has_error = true;
    }
    field_ = Field::kNone;
  }
  bool Scalar(bool is_null) {
    Begin(is_null);
    return true;
  }
  bool Open() {
    Begin(false);
    ++depth_;
    return true;
  }
  bool Close() {
    if (--depth_ == 1) {
      in_usage_ = false;
      in_result_ = false;
    }
    field_ = Field::kNone;
    return true;
  }
  void Number(int64_t v) {
    if (depth_ != 2 || !in_usage_ || v < 0) return;
    if (field_ == Field::kPrompt) usage_->prompt_tokens = v;
    if (field_ == Field::kCompletion) usage_->completion_tokens = v;
    if (field_ == Field::kTotal) usage_->total_tokens = v;
  }

  ReplyScan* out_;
  int depth_ = 0;
  Field field_ = Field::kNone;
  bool in_usage_ = false;
  bool in_result_ = false;
  std::optional<TokenUsage> usage_;
};

// Scans one JSON document into `scan`; false when it is not JSON.
bool ScanJson(std::string_view text, ReplyScan* scan) {
  ReplyScan one;
  ReplySax sax(&one);
  if (!Json::sax_parse(text, &sax)) return false;
  sax.Finish();
  scan->valid = true;
  scan->has_result |= one.has_result;
  scan->has_error |= one.has_error;
  scan->result_is_error |= one.result_is_error;
  if (one.usage) scan->usage = one.usage;
  return true;
}

// The integer at `field` of `body`, if present: a non-negative integer or
// an error naming the field.
absl::Status ReadCount(const Json& body, const char* field,
                       std::optional<int64_t>* out) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must be a non-negative integer", field));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

}  // namespace

int64_t PromptTextBytes(const Json& messages) {
  int64_t bytes = 0;
  if (!messages.is_array()) return 0;
  for (const Json& m : messages) {
    if (!m.is_object()) continue;
    const auto content = m.find("content");
    if (content == m.end()) continue;
    if (content->is_string()) {
      bytes += static_cast<int64_t>(content->get_ref<const std::string&>().size());
    } else if (content->is_array()) {
      for (const Json& part : *content) {
        if (!part.is_object()) continue;
        const auto text = part.find("text");
        if (text != part.end() && text->is_string()) {
          bytes += static_cast<int64_t>(text->get_ref<const std::string&>().size());
        }
      }
    }
  }
  return bytes;
}

absl::StatusOr<ChatRequestInfo> ParseChatRequest(std::string_view body) {
  const Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("request body is not valid JSON");
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError("request body must be a JSON object");
  }
  ChatRequestInfo info;
  if (const auto model = j.find("model"); model != j.end()) {
    if (!model->is_string()) {
      return absl::InvalidArgumentError("model: must be a string");
    }
    info.model = model->get<std::string>();
  }
  const auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array()) {
    return absl::InvalidArgumentError("messages: must be an array");
  }
  info.prompt_bytes = PromptTextBytes(*messages);
  std::optional<int64_t> max_tokens, max_completion_tokens;
  if (absl::Status s = ReadCount(j, "max_tokens", &max_tokens); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ReadCount(j, "max_completion_tokens", &max_completion_tokens);
      !s.ok()) {
    return s;
  }
  info.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  return info;
}

ReplyScan ScanReply(std::string_view body, bool event_stream) {
  ReplyScan scan;
  if (!event_stream) {
    ScanJson(body, &scan);
    return scan;
  }
  // Server-sent events: one JSON document per "data:" line.
  while (!body.empty()) {
    const size_t eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    body = eol == std::string_view::npos ? std::string_view()
                                         : body.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.starts_with("data:")) continue;
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line == "[DONE]") continue;
    ScanJson(line, &scan);
  }
  return scan;
}

absl::StatusOr<McpRequestInfo> ParseMcpRequest(std::string_view body) {
  const Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("request body is not valid JSON");
  }
  if (j.is_array()) {
    return absl::InvalidArgumentError("JSON-RPC batches are not supported");
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError("request must be a JSON-RPC 2.0 object");
  }
  const auto version = j.find("jsonrpc");
  if (version == j.end() || *version != "2.0") {
    return absl::InvalidArgumentError("jsonrpc: must be \"2.0\"");
  }
  McpRequestInfo info;
  const auto method = j.find("method");
  if (method == j.end() || !method->is_string()) {
    return absl::InvalidArgumentError("method: must be a string");
  }
  info.method = method->get<std::string>();
  const auto id = j.find("id");
  info.notification = id == j.end();
  if (!info.notification) {
    if (!id->is_string() && !id->is_number_integer() && !id->is_null()) {
      return absl::InvalidArgumentError("id: must be a string or an integer");
    }
    info.id = *id;
  }
  if (const auto params = j.find("params");
      params != j.end() && params->is_object()) {
    const auto name = params->find("name");
    if (name != params->end() && name->is_string()) {
      info.tool = name->get<std::string>();
    }
  }
  return info;
}

Metering::Metering(const plangate::Enforcer& enforcer,
                   MeteringOptions options)
    : options_(options) {
  for (const char* name : {"tokens", "ai_tokens"}) {
    if ((tokens_ = enforcer.MeterId(name)) >= 0) {
      tokens_name_ = name;
      break;
    }
  }
  cost_ = enforcer.MeterId("cost_micros");
  tool_calls_ = enforcer.MeterId("tool_calls");
  for (const plangate::Plan& plan : enforcer.catalog()->plans()) {
    for (const std::string& feature : plan.features) {
      byok_gated_ |= feature == kByokFeature;
    }
  }
}

int64_t Metering::CostMicros(int64_t tokens) const {
  // Round up: a fraction of a micro-unit is still charged.
  return (tokens * options_.micros_per_1k_tokens + 999) / 1000;
}

Charge Metering::ChatEstimate(const ChatRequestInfo& chat,
                              const KeyRecord& key) const {
  const int64_t tokens =
      (chat.prompt_bytes + 3) / 4 +
      chat.max_tokens.value_or(options_.default_max_tokens);
  Charge c;
  c.Add(tokens_, tokens);
  const int64_t cost = key.byok ? 0 : CostMicros(tokens);
  c.Add(cost_, cost);
  if (key.prepaid) c.wallet_micros = cost;
  return c;
}

Charge Metering::ChatActual(const TokenUsage& usage,
                            const KeyRecord& key) const {
  Charge c;
  c.Add(tokens_, usage.total_tokens);
  const int64_t cost = key.byok ? 0 : CostMicros(usage.total_tokens);
  c.Add(cost_, cost);
  if (key.prepaid) c.wallet_micros = cost;
  return c;
}

Charge Metering::ToolCall() const {
  Charge c;
  c.Add(tool_calls_, 1);
  return c;
}

std::span<const std::string_view> Metering::Features(
    const KeyRecord& key) const {
  if (key.byok && byok_gated_) return kByokFeatures;
  return {};
}

std::string Metering::Describe() const {
  return fmt::format("tokens={} cost={} tool_calls={} byok_feature={}",
                     tokens_ >= 0 ? tokens_name_ : "-",
                     cost_ >= 0 ? "cost_micros" : "-",
                     tool_calls_ >= 0 ? "tool_calls" : "-",
                     byok_gated_ ? "yes" : "no");
}

}  // namespace gateway
