// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "metering.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include "fmt/format.h"

namespace gateway {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kByokFeature = "byok";
// A meter "tool_calls.<name>" counts the MCP tool <name> alone.
constexpr std::string_view kToolMeterPrefix = "tool_calls.";
// The largest max_tokens accepted (far above any model's output limit).
constexpr int64_t kMaxTokensField = 100'000'000;
constexpr std::array<std::string_view, 1> kByokFeatures = {kByokFeature};

// A single pass over a JSON document that checks its syntax and reports
// the few members ScanReply needs, building nothing and allocating nothing
// (a SAX parse with nlohmann costs ~10x more: it decodes every string).
// String contents are compared raw: a key spelled with escapes is not
// recognized, which no upstream does.
class ReplyWalker {
 public:
  explicit ReplyWalker(std::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

  // The whole text must be one JSON object.
  bool Scan(ReplyScan* out) {
    if (!Consume('{')) return false;
    if (!Consume('}')) {
      do {
        std::string_view key;
        if (!String(&key) || !Consume(':')) return false;
        if (!TopLevelMember(key, out)) return false;
      } while (Consume(','));
      if (!Consume('}')) return false;
    }
    Ws();
    return p_ == end_;
  }

  // The text must be the rest of a JSON object from its member "usage" on:
  // "usage", an object, maybe more members, the closing brace. The usage
  // is read as Scan reads it.
  bool ScanUsageTail(ReplyScan* out) {
    std::string_view key;
    if (!String(&key) || key != "usage" || !Consume(':') || Peek() != '{' ||
        !Usage(out)) {
      return false;
    }
    while (Consume(',')) {
      if (!String(&key) || !Consume(':') || !Skip(1)) return false;
    }
    if (!Consume('}')) return false;
    Ws();
    return p_ == end_;
  }

 private:
  static constexpr int kMaxDepth = 128;

  bool TopLevelMember(std::string_view key, ReplyScan* out) {
    const char next = Peek();
    if (key == "usage" && next == '{') return Usage(out);
    if (key == "result") {
      out->has_result = true;
      return next == '{' ? Result(out) : Skip(1);
    }
    if (key == "error") {
      if (next == 'n') return Literal("null");
      out->has_error = true;
    }
    return Skip(1);
  }

  bool Usage(ReplyScan* out) {
    TokenUsage usage;
    if (!Object(2, [&](std::string_view key) {
          if (key == "prompt_tokens_details" && Peek() == '{') {
            return CountIn(3, "cached_tokens", &usage.cached_tokens);
          }
          if (key == "completion_tokens_details" && Peek() == '{') {
            return CountIn(3, "reasoning_tokens", &usage.reasoning_tokens);
          }
          int64_t* field = key == "prompt_tokens" ? &usage.prompt_tokens
                           : key == "completion_tokens"
                               ? &usage.completion_tokens
                           : key == "total_tokens" ? &usage.total_tokens
                                                   : nullptr;
          if (field == nullptr) return Skip(2);
          std::optional<int64_t> n;
          if (!Number(&n)) return Skip(2);
          if (n && *n >= 0) *field = std::min(*n, plangate::kMaxCount);
          return true;
        })) {
      return false;
    }
    if (usage.total_tokens == 0) {
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    out->usage = usage;
    return true;
  }

  // An object's member `name`, a count, into *out; others skipped.
  bool CountIn(int depth, std::string_view name, int64_t* out) {
    return Object(depth, [&](std::string_view key) {
      if (key != name) return Skip(depth + 1);
      std::optional<int64_t> n;
      if (!Number(&n)) return Skip(depth + 1);
      if (n && *n >= 0) *out = std::min(*n, plangate::kMaxCount);
      return true;
    });
  }

  bool Result(ReplyScan* out) {
    return Object(2, [&](std::string_view key) {
      if (key == "isError" && Peek() == 't') {
        if (!Literal("true")) return false;
        out->result_is_error = true;
        return true;
      }
      return Skip(2);
    });
  }

  // An object whose members `member(key)` consumes the value of.
  template <typename Member>
  bool Object(int depth, Member member) {
    if (depth > kMaxDepth || !Consume('{')) return false;
    if (Consume('}')) return true;
    do {
      std::string_view key;
      if (!String(&key) || !Consume(':') || !member(key)) return false;
    } while (Consume(','));
    return Consume('}');
  }

  // Any value, at nesting `depth`.
  bool Skip(int depth) {
    switch (Peek()) {
      case '{':
        return Object(depth, [&](std::string_view) { return Skip(depth + 1); });
      case '[':
        if (depth > kMaxDepth) return false;
        ++p_;
        if (Consume(']')) return true;
        do {
          if (!Skip(depth + 1)) return false;
        } while (Consume(','));
        return Consume(']');
      case '"': {
        std::string_view unused;
        return String(&unused);
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default: {
        std::optional<int64_t> unused;
        return Number(&unused);
      }
    }
  }

  // A string's raw contents (escapes left as they are; control characters
  // are not checked for).
  bool String(std::string_view* out) {
    if (Peek() != '"') return false;
    const char* start = ++p_;
    for (;;) {
      const auto* quote = static_cast<const char*>(
          std::memchr(p_, '"', static_cast<size_t>(end_ - p_)));
      if (quote == nullptr) return false;
      // The quote ends the string unless an odd run of backslashes
      // precedes it.
      const char* q = quote;
      while (q > start && q[-1] == '\\') --q;
      p_ = quote + 1;
      if ((quote - q) % 2 == 0) {
        *out = std::string_view(start, static_cast<size_t>(quote - start));
        return true;
      }
    }
  }

  // A number; `integer` is set when it has no fraction or exponent.
  bool Number(std::optional<int64_t>* integer) {
    Ws();
    const char* start = p_;
    bool whole = true;
    while (p_ < end_ &&
           (std::isdigit(static_cast<unsigned char>(*p_)) || *p_ == '-' ||
            *p_ == '+' || *p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      whole &= *p_ != '.' && *p_ != 'e' && *p_ != 'E';
      ++p_;
    }
    if (p_ == start) return false;
    if (whole) {
      int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(start, p_, v);
      if (ec == std::errc::result_out_of_range) {
        v = *start == '-' ? 0 : std::numeric_limits<int64_t>::max();
      } else if (ec != std::errc() || ptr != p_) {
        return false;
      }
      *integer = v;
    }
    return true;
  }

  bool Literal(std::string_view word) {
    Ws();
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  void Ws() {
    while (p_ < end_ &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }
  char Peek() {
    Ws();
    return p_ < end_ ? *p_ : '\0';
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++p_;
    return true;
  }

  const char* p_;
  const char* end_;
};

// Scans one JSON document into `scan`; false when it is not JSON.
bool ScanJson(std::string_view text, ReplyScan* scan) {
  ReplyScan one;
  if (!ReplyWalker(text).Scan(&one)) return false;
  scan->valid = true;
  scan->has_result |= one.has_result;
  scan->has_error |= one.has_error;
  scan->result_is_error |= one.result_is_error;
  if (one.usage) scan->usage = one.usage;
  return true;
}

bool IsJsonWs(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// The last `c` in data[0, n), or nullptr.
const char* LastByte(const char* data, size_t n, char c) {
#if defined(__GLIBC__)
  return static_cast<const char*>(memrchr(data, c, n));
#else
  while (n > 0) {
    if (data[--n] == c) return data + n;
  }
  return nullptr;
#endif
}

// How far back from the end of a reply ScanUsageFromEnd looks for its
// "usage".
constexpr size_t kTailScanBytes = 4096;

// The integer at `field` of `body`, if present: a non-negative integer or
// an error naming the field.
absl::Status ReadCount(const Json& body, const char* field,
                       std::optional<int64_t>* out) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > kMaxTokensField) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: must be an integer in [0, {}]", field, kMaxTokensField));
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
      bytes +=
          static_cast<int64_t>(content->get_ref<const std::string&>().size());
    } else if (content->is_array()) {
      for (const Json& part : *content) {
        if (!part.is_object()) continue;
        const auto text = part.find("text");
        if (text != part.end() && text->is_string()) {
          bytes +=
              static_cast<int64_t>(text->get_ref<const std::string&>().size());
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
  if (const auto stream = j.find("stream");
      stream != j.end() && !stream->is_null()) {
    if (!stream->is_boolean()) {
      return absl::InvalidArgumentError("stream: must be a boolean");
    }
    info.stream = stream->get<bool>();
  }
  if (const auto options = j.find("stream_options");
      options != j.end() && !options->is_null()) {
    if (!options->is_object()) {
      return absl::InvalidArgumentError("stream_options: must be an object");
    }
    const auto include = options->find("include_usage");
    if (include != options->end() && !include->is_null()) {
      if (!include->is_boolean()) {
        return absl::InvalidArgumentError(
            "stream_options.include_usage: must be a boolean");
      }
      info.include_usage = include->get<bool>();
    }
  }
  return info;
}

std::string WithStreamUsage(std::string_view body) {
  // Ordered, so the upstream sees the client's members in the client's
  // order.
  nlohmann::ordered_json j =
      nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::string(body);
  auto& options = j["stream_options"];
  if (!options.is_object()) options = nlohmann::ordered_json::object();
  options["include_usage"] = true;
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

bool SseSplitter::Feed(std::string_view bytes,
                       std::vector<std::string>* events) {
  pending_.append(bytes);
  // An event ends where a line break is followed by an empty line ("\n\n"
  // or "\n\r\n"). pending_[0, scanned_) holds no line break still to
  // examine.
  size_t start = 0;  // of the event being read
  size_t i = scanned_;
  for (;;) {
    const size_t nl = pending_.find('\n', i);
    if (nl == std::string::npos) {
      i = pending_.size();
      break;
    }
    size_t next = nl + 1;
    if (next < pending_.size() && pending_[next] == '\r') ++next;
    if (next >= pending_.size()) {
      i = nl;  // decided by the next bytes
      break;
    }
    if (pending_[next] == '\n') {
      events->emplace_back(pending_, start, next + 1 - start);
      start = i = next + 1;
    } else {
      i = nl + 1;
    }
  }
  pending_.erase(0, start);
  scanned_ = i - start;
  return pending_.size() <= max_event_;
}

StreamEventInfo ScanStreamEvent(std::string_view event) {
  StreamEventInfo info;
  std::string data;
  bool has_data = false;
  while (!event.empty()) {
    const size_t eol = event.find('\n');
    std::string_view line = event.substr(0, eol);
    event = eol == std::string_view::npos ? std::string_view()
                                          : event.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.starts_with("data:")) continue;  // event:, id:, comments
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (has_data) data += '\n';
    data.append(line);
    has_data = true;
  }
  if (!has_data) return info;
  if (data == "[DONE]") {
    info.done = true;
    return info;
  }
  const Json j = Json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return info;
  info.valid = true;
  if (const auto e = j.find("error"); e != j.end() && !e->is_null()) {
    info.error = true;
  }
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    TokenUsage usage;
    const auto count = [](const Json& obj, const char* field) -> int64_t {
      const auto it = obj.find(field);
      if (it == obj.end() || !it->is_number_integer()) return 0;
      return std::clamp<int64_t>(it->get<int64_t>(), 0, plangate::kMaxCount);
    };
    usage.prompt_tokens = count(*u, "prompt_tokens");
    usage.completion_tokens = count(*u, "completion_tokens");
    usage.total_tokens = count(*u, "total_tokens");
    if (const auto d = u->find("prompt_tokens_details");
        d != u->end() && d->is_object()) {
      usage.cached_tokens = count(*d, "cached_tokens");
    }
    if (const auto d = u->find("completion_tokens_details");
        d != u->end() && d->is_object()) {
      usage.reasoning_tokens = count(*d, "reasoning_tokens");
    }
    if (usage.total_tokens == 0) {
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    info.usage = usage;
  }
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array()) return info;
  info.has_choices = !choices->empty();
  const auto text = [&](const Json& obj, const char* field) {
    const auto it = obj.find(field);
    if (it != obj.end() && it->is_string()) {
      info.text_bytes +=
          static_cast<int64_t>(it->get_ref<const std::string&>().size());
    }
  };
  for (const Json& choice : *choices) {
    if (!choice.is_object()) continue;
    const auto delta = choice.find("delta");
    if (delta == choice.end() || !delta->is_object()) continue;
    text(*delta, "content");
    text(*delta, "refusal");
    text(*delta, "reasoning_content");
    const auto calls = delta->find("tool_calls");
    if (calls == delta->end() || !calls->is_array()) continue;
    for (const Json& call : *calls) {
      if (!call.is_object()) continue;
      const auto fn = call.find("function");
      if (fn != call.end() && fn->is_object()) text(*fn, "arguments");
    }
  }
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

// The common case of ReplyWalker::ScanUsageTail, and only that, faster:
// "usage":{ then only prompt_tokens, completion_tokens and total_tokens,
// each a run of at most 18 digits, then "}" and "}", whitespace around
// any of them. False when the text is anything else (the walker reads it
// then); when true, `usage` is what the walker would read.
bool FlatUsageTail(std::string_view s, TokenUsage* usage) {
  const char* p = s.data() + 7;  // past "usage"
  const char* const end = s.data() + s.size();
  const auto ws = [&] {
    while (p < end && IsJsonWs(*p)) ++p;
  };
  const auto consume = [&](char c) {
    ws();
    if (p == end || *p != c) return false;
    ++p;
    return true;
  };
  if (!consume(':') || !consume('{')) return false;
  TokenUsage u;
  if (!consume('}')) {
    do {
      if (!consume('"')) return false;
      // The key with its closing quote, compared whole.
      const auto key = [&](std::string_view quoted) {
        if (static_cast<size_t>(end - p) < quoted.size() ||
            std::memcmp(p, quoted.data(), quoted.size()) != 0) {
          return false;
        }
        p += quoted.size();
        return true;
      };
      int64_t* const field = key("prompt_tokens\"")       ? &u.prompt_tokens
                             : key("completion_tokens\"") ? &u.completion_tokens
                             : key("total_tokens\"")      ? &u.total_tokens
                                                          : nullptr;
      if (field == nullptr || !consume(':')) return false;
      ws();
      const char* const digits = p;
      int64_t n = 0;
      while (p < end && *p >= '0' && *p <= '9' && p - digits < 18) {
        n = n * 10 + (*p++ - '0');
      }
      if (p == digits || (p < end && *p >= '0' && *p <= '9')) return false;
      *field = std::min(n, plangate::kMaxCount);
    } while (consume(','));
    if (!consume('}')) return false;
  }
  if (!consume('}')) return false;
  ws();
  if (p != end) return false;
  if (u.total_tokens == 0) {
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
  }
  *usage = u;
  return true;
}

bool ScanUsageFromEnd(std::string_view s, TokenUsage* usage) {
  // The body must open an object.
  size_t first = 0;
  while (first < s.size() && IsJsonWs(s[first])) ++first;
  if (first == s.size() || s[first] != '{') return false;
  // The last "usage" (quotes included) in the last kTailScanBytes. In JSON
  // those seven bytes cannot be inside a string: there a quote is escaped,
  // and the closing one would follow 'e', not a backslash. So they are the
  // string "usage", and since a comma or the opening brace comes before
  // them and a colon after, a key; the walk from there to the end below
  // says whether of the top-level object: a key of a nested one would
  // leave one more closing bracket after the object's closing brace.
  const size_t lo = std::max(
      first + 1, s.size() > kTailScanBytes ? s.size() - kTailScanBytes : 0);
  constexpr std::string_view kKey = "\"usage\"";
  // Found by its 'u' (memrchr), a byte the keys of a usage block lack.
  size_t at = 0;
  for (size_t hi = s.size();;) {
    if (hi < lo + 2) return false;
    const char* u = LastByte(s.data() + lo + 1, hi - (lo + 1), 'u');
    if (u == nullptr) return false;
    const size_t k = static_cast<size_t>(u - s.data());
    if (s.substr(k - 1, kKey.size()) == kKey) {
      at = k - 1;
      break;
    }
    hi = k;
  }
  // Before it: the opening brace, or a comma after the end of a value.
  size_t i = at;
  while (i > first + 1 && IsJsonWs(s[i - 1])) --i;
  if (i != first + 1) {
    if (s[i - 1] != ',') return false;
    --i;
    while (i > first + 1 && IsJsonWs(s[i - 1])) --i;
    if (i == first + 1) return false;
    const char c = s[i - 1];
    if (c != '}' && c != ']' && c != '"' && !(c >= '0' && c <= '9') &&
        !(c >= 'a' && c <= 'z')) {
      return false;  // not a string, number, literal, object or array
    }
  }
  // From it to the end: the usage object, members, the closing brace.
  if (FlatUsageTail(s.substr(at), usage)) return true;
  ReplyScan scan;
  if (!ReplyWalker(s.substr(at)).ScanUsageTail(&scan)) return false;
  *usage = *scan.usage;
  return true;
}

std::optional<TokenUsage> ReplyUsage(std::string_view body, bool event_stream) {
  if (!event_stream) {
    TokenUsage usage;
    if (ScanUsageFromEnd(body, &usage)) return usage;
  }
  return ScanReply(body, event_stream).usage;
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
  if (info.notification && info.method == "tools/call") {
    // A tool call is a request; sent as a notification it would run
    // without a result to meter by.
    return absl::InvalidArgumentError(
        "tools/call: must have an id (a notification gets no result)");
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

Metering::Metering(const plangate::Enforcer& enforcer, MeteringOptions options)
    : catalog_(enforcer.catalog()), options_(options) {
  for (const char* name : {"tokens", "ai_tokens"}) {
    if ((tokens_ = enforcer.MeterId(name)) >= 0) {
      tokens_name_ = name;
      break;
    }
  }
  cost_ = enforcer.MeterId("cost_micros");
  tool_calls_ = enforcer.MeterId("tool_calls");
  const std::vector<std::string>& meters = enforcer.catalog()->meters();
  for (size_t i = 0; i < meters.size(); ++i) {
    std::string_view name = meters[i];
    if (name.starts_with(kToolMeterPrefix) &&
        name.size() > kToolMeterPrefix.size()) {
      name.remove_prefix(kToolMeterPrefix.size());
      tool_meters_.emplace(std::string(name), enforcer.MeterId(meters[i]));
    }
  }
  for (const plangate::Plan& plan : enforcer.catalog()->plans()) {
    for (const std::string& feature : plan.features) {
      byok_gated_ |= feature == kByokFeature;
    }
  }
}

int64_t Metering::CostMicros(std::string_view model,
                             const plangate::TokenCounts& counts,
                             const KeyRecord& key) const {
  if (key.byok) return 0;
  if (const plangate::Price* price =
          model.empty() ? nullptr : catalog_->PriceFor(model)) {
    return plangate::CostMicros(*price, counts);
  }
  // Cached and reasoning tokens are inside input and output: one rate.
  const int64_t tokens =
      std::max<int64_t>(0, counts.input) + std::max<int64_t>(0, counts.output);
  const int64_t rate = options_.micros_per_1k_tokens;
  if (tokens <= 0 || rate <= 0) return 0;
  // Saturates at the largest count plangate holds rather than overflow.
  if (tokens > plangate::kMaxCount / rate) return plangate::kMaxCount;
  // Round up: a fraction of a micro-unit is still charged.
  return (tokens * rate + 999) / 1000;
}

Charge Metering::ChatEstimate(const ChatRequestInfo& chat,
                              const KeyRecord& key) const {
  const int64_t prompt = (chat.prompt_bytes + 3) / 4;
  const int64_t completion =
      chat.max_tokens.value_or(options_.default_max_tokens);
  Charge c;
  c.Add(tokens_, prompt + completion);
  const int64_t cost =
      CostMicros(chat.model, {.input = prompt, .output = completion}, key);
  c.Add(cost_, cost);
  if (key.prepaid) c.wallet_micros = cost;
  return c;
}

Charge Metering::ChatActual(const TokenUsage& usage, std::string_view model,
                            const KeyRecord& key) const {
  const int64_t tokens = std::min(usage.total_tokens, plangate::kMaxCount);
  Charge c;
  c.Add(tokens_, tokens);
  // A reply that gives only the total is priced as prompt tokens.
  const bool split = usage.prompt_tokens + usage.completion_tokens > 0;
  const plangate::TokenCounts counts =
      split ? plangate::TokenCounts{.input = usage.prompt_tokens,
                                    .cached_input = usage.cached_tokens,
                                    .output = usage.completion_tokens,
                                    .reasoning = usage.reasoning_tokens}
            : plangate::TokenCounts{.input = tokens};
  const int64_t cost = CostMicros(model, counts, key);
  c.Add(cost_, cost);
  if (key.prepaid) c.wallet_micros = cost;
  return c;
}

Charge Metering::ChatStreamed(const ChatRequestInfo& chat, int64_t text_bytes,
                              const KeyRecord& key) const {
  TokenUsage usage;
  usage.prompt_tokens = (chat.prompt_bytes + 3) / 4;
  usage.completion_tokens = (std::max<int64_t>(text_bytes, 0) + 3) / 4;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return ChatActual(usage, chat.model, key);
}

int64_t Metering::TokensOf(const Charge& c) const {
  for (const plangate::MeterAmount& m : c.span()) {
    if (m.meter == tokens_) return m.amount;
  }
  return 0;
}

Charge Metering::StreamExtension(int64_t tokens, std::string_view model,
                                 const KeyRecord& key) const {
  Charge c;
  c.Add(tokens_, tokens);
  c.Add(cost_, CostMicros(model, {.output = tokens}, key));
  return c;
}

Charge Metering::ToolCall(std::string_view tool) const {
  Charge c;
  c.Add(tool_calls_, 1);
  if (!tool.empty()) {
    if (const auto it =
            tool_meters_.find(absl::string_view(tool.data(), tool.size()));
        it != tool_meters_.end()) {
      c.Add(it->second, 1);
    }
  }
  return c;
}

std::span<const std::string_view> Metering::Features(
    const KeyRecord& key) const {
  if (key.byok && byok_gated_) return kByokFeatures;
  return {};
}

std::string Metering::Describe() const {
  return fmt::format(
      "tokens={} cost={} tool_calls={}{} byok_feature={}",
      tokens_ >= 0 ? tokens_name_ : "-", cost_ >= 0 ? "cost_micros" : "-",
      tool_calls_ >= 0 ? "tool_calls" : "-",
      tool_meters_.empty() ? std::string()
                           : fmt::format(" per_tool={}", tool_meters_.size()),
      byok_gated_ ? "yes" : "no");
}

}  // namespace gateway
