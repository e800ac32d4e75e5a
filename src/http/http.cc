// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/http.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace plangate {
namespace {

// Longest piece of a limit id, meter, plan or reason quoted in a generated
// message or used as the body's code.
constexpr size_t kMaxQuotedBytes = 128;

// "00" "01" ... "99": two decimal digits per lookup.
constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536"
    "37383940414243444546474849505152535455565758596061626364656667686970717273"
    "7475767778798081828384858687888990919293949596979899";

// The number of decimal digits of v.
size_t DecimalLength(uint64_t v) {
  size_t n = 1;
  for (; v >= 10000; v /= 10000) n += 4;
  return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

// Writes v's decimal digits ending just before `end`, two at a time.
void WriteDigits(uint64_t v, char* end) {
  char* p = end;
  while (v >= 100) {
    const size_t pair = 2 * static_cast<size_t>(v % 100);
    v /= 100;
    p -= 2;
    p[0] = kDigitPairs[pair];
    p[1] = kDigitPairs[pair + 1];
  }
  if (v >= 10) {
    p -= 2;
    p[0] = kDigitPairs[2 * v];
    p[1] = kDigitPairs[2 * v + 1];
  } else {
    *--p = static_cast<char>('0' + v);
  }
}

// Appends to a fixed buffer. An append that does not fit writes nothing and
// fails the writer, which then ignores further appends until Rewind. So a
// header is written whole or, after Rewind to its start, not at all.
class Writer {
 public:
  Writer(char* data, size_t capacity) : data_(data), capacity_(capacity) {}

  size_t size() const { return size_; }
  bool ok() const { return ok_; }
  std::string_view View(size_t from) const {
    return {data_ + from, size_ - from};
  }
  std::string_view View(size_t from, size_t to) const {
    return {data_ + from, to - from};
  }

  void Append(std::string_view s) {
    if (!ok_ || s.size() > capacity_ - size_) {
      ok_ = false;
      return;
    }
    if (s.empty()) return;
    std::memcpy(data_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  void Append(char c) {
    if (!ok_ || size_ == capacity_) {
      ok_ = false;
      return;
    }
    data_[size_++] = c;
  }
  // Decimal, straight into the buffer (std::to_chars into a scratch array
  // and a copy cost several times more: a gateway renders five or six
  // numbers per request).
  void AppendInt(int64_t v) {
    const bool negative = v < 0;
    // Two's complement: 0 - v as unsigned is |v|, INT64_MIN included.
    const uint64_t magnitude =
        negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    const size_t len = DecimalLength(magnitude);
    const size_t total = len + (negative ? 1 : 0);
    if (!ok_ || total > capacity_ - size_) {
      ok_ = false;
      return;
    }
    if (negative) data_[size_] = '-';
    size_ += total;
    WriteDigits(magnitude, data_ + size_);
  }

  void Rewind(size_t mark) {
    size_ = mark;
    ok_ = true;
  }

 private:
  char* data_;
  size_t capacity_;
  size_t size_ = 0;
  bool ok_ = true;
};

// ceil(ms / 1000) for ms > 0, else 0.
int64_t CeilSeconds(int64_t ms) {
  if (ms <= 0) return 0;
  return ms / 1000 + (ms % 1000 != 0 ? 1 : 0);
}

// The length of the well-formed UTF-8 sequence at s[i], or 0 if there is
// none (a stray continuation byte, an overlong form, a surrogate, a
// truncated sequence, a code point past U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c == 0xE0) {
    n = 3;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    n = 3;
  } else if (c == 0xED) {
    n = 3;
    hi = 0x9F;
  } else if (c == 0xF0) {
    n = 4;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    n = 4;
  } else if (c == 0xF4) {
    n = 4;
    hi = 0x8F;
  } else {
    return 0;
  }
  if (n > s.size() - i) return 0;
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// s cut to at most max_bytes, at a UTF-8 character boundary.
std::string_view Utf8Prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The JSON-escaped form of the character at s[i], using `scratch` (at
// least 6 bytes) when needed; sets *advance to the bytes consumed.
// Invalid UTF-8 becomes \ufffd, one byte at a time.
std::string_view JsonPiece(std::string_view s, size_t i, char* scratch,
                           size_t* advance) {
  *advance = 1;
  const auto c = static_cast<unsigned char>(s[i]);
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  if (c < 0x20) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::memcpy(scratch, "\\u00", 4);
    scratch[4] = kHex[c >> 4];
    scratch[5] = kHex[c & 0xF];
    return {scratch, 6};
  }
  if (c < 0x80) return s.substr(i, 1);
  const size_t n = Utf8SequenceLength(s, i);
  if (n == 0) return "\\ufffd";
  *advance = n;
  return s.substr(i, n);
}

// The bytes JSON and sf-strings both take as they are: printable ASCII
// other than `"` and `\`.
constexpr std::array<bool, 256> kPlainBytes = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c <= 0x7E; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// The length of the run of plain bytes at s[i].
size_t PlainRun(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && kPlainBytes[static_cast<unsigned char>(s[j])]) ++j;
  return j - i;
}

size_t JsonEscapedSize(std::string_view s) {
  char scratch[8];
  size_t total = 0;
  for (size_t i = 0, advance = 0; i < s.size(); i += advance) {
    if (const size_t run = PlainRun(s, i); run != 0) {
      total += run;
      advance = run;
      continue;
    }
    total += JsonPiece(s, i, scratch, &advance).size();
  }
  return total;
}

// Appends s JSON-escaped (without quotes), stopping before the first
// character that would take the writer past `limit` bytes.
void AppendJsonEscaped(Writer& w, std::string_view s, size_t limit) {
  char scratch[8];
  for (size_t i = 0, advance = 0; i < s.size(); i += advance) {
    const size_t room = limit - std::min(limit, w.size());
    if (const size_t run = PlainRun(s, i); run != 0) {
      // One byte per character: as much of the run as fits.
      w.Append(s.substr(i, std::min(run, room)));
      if (run > room) return;
      advance = run;
      continue;
    }
    const std::string_view piece = JsonPiece(s, i, scratch, &advance);
    if (piece.size() > room) return;
    w.Append(piece);
  }
}

// Appends s as a structured-field string (RFC 8941 §3.3.3): `"` and `\`
// escaped; a character outside printable ASCII, which an sf-string cannot
// hold, becomes `_`.
void AppendSfString(Writer& w, std::string_view s) {
  w.Append('"');
  for (size_t i = 0; i < s.size();) {
    if (const size_t run = PlainRun(s, i); run != 0) {
      w.Append(s.substr(i, run));
      i += run;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      w.Append('\\');
      w.Append(static_cast<char>(c));
      ++i;
    } else {
      w.Append('_');
      const size_t n = Utf8SequenceLength(s, i);
      i += n == 0 ? 1 : n;
    }
  }
  w.Append('"');
}

std::string_view WindowAdjective(WindowUnit unit) {
  switch (unit) {
    case WindowUnit::kBillingPeriod:
      return "Monthly";
    case WindowUnit::kAnnual:
      return "Annual";
    case WindowUnit::kDay:
      return "Daily";
    case WindowUnit::kHour:
      return "Hourly";
    case WindowUnit::kMinute:
      return "Per-minute";
    case WindowUnit::kSecond:
      return "Per-second";
    case WindowUnit::kConcurrent:
      return "Concurrency";
  }
  return "Usage";
}

// "N seconds" below 2 minutes, then minutes, hours below 2 days, then
// days; always rounded up, so the wait is never understated.
void AppendDuration(Writer& w, int64_t ms) {
  const int64_t seconds = std::max<int64_t>(1, CeilSeconds(ms));
  int64_t n;
  std::string_view unit;
  if (seconds < 120) {
    n = seconds;
    unit = " second";
  } else if (seconds < 2 * 3600) {
    n = (seconds + 59) / 60;
    unit = " minute";
  } else if (seconds < 2 * 86400) {
    n = (seconds + 3599) / 3600;
    unit = " hour";
  } else {
    n = (seconds + 86399) / 86400;
    unit = " day";
  }
  w.AppendInt(n);
  w.Append(unit);
  if (n != 1) w.Append('s');
}

// A sentence for a denial without a message of its own.
void AppendGeneratedMessage(Writer& w, const Decision& d, int64_t now_ms) {
  if (d.deny == DenyKind::kLimit && d.has_limit) {
    if (d.limit.window_count != 1) {
      // "Per-15m limit of ..."
      w.Append("Per-");
      w.AppendInt(d.limit.window_count);
      w.Append(d.limit.window == WindowUnit::kDay      ? 'd'
               : d.limit.window == WindowUnit::kHour   ? 'h'
               : d.limit.window == WindowUnit::kMinute ? 'm'
                                                       : 's');
    } else {
      w.Append(WindowAdjective(d.limit.window));
    }
    w.Append(" limit of ");
    w.AppendInt(d.limit_value);
    w.Append(' ');
    w.Append(Utf8Prefix(d.limit.meter, kMaxQuotedBytes));
    w.Append(" reached for ");
    w.Append(Utf8Prefix(d.limit.limit_id, kMaxQuotedBytes));
    if (d.status == 429 && d.retry_after_ms > 0) {
      w.Append("; try again in ");
      AppendDuration(w, d.retry_after_ms);
    } else if (d.reset_ms > now_ms) {
      w.Append("; resets in ");
      AppendDuration(w, d.reset_ms - now_ms);
    }
    w.Append('.');
  } else {
    switch (d.deny) {
      case DenyKind::kUnknownAccount:
        w.Append("The account is not registered.");
        break;
      case DenyKind::kUnknownPlan:
        w.Append("The account's plan is not available.");
        break;
      case DenyKind::kInvalidRequest:
        w.Append("The request is invalid.");
        break;
      case DenyKind::kCapacity:
        w.Append("Quota enforcement is at capacity; try again later.");
        break;
      case DenyKind::kPaymentRequired:
        w.Append("Payment is required: the subscription is past due.");
        break;
      case DenyKind::kFeatureNotInPlan:
        w.Append("This feature is not included in your plan.");
        break;
      case DenyKind::kModelNotAllowed:
        w.Append("This model is not available on your plan.");
        break;
      case DenyKind::kKeyKindNotAllowed:
        w.Append("This kind of API key is not allowed on your plan.");
        break;
      case DenyKind::kInsufficientCredit:
        w.Append("Your credit balance is too low for this request.");
        break;
      case DenyKind::kResourceLimit:
        w.Append("Your plan's resource limit has been reached.");
        break;
      case DenyKind::kSyncing:
        w.Append(
            "Usage is being synchronized across the cluster; retry "
            "shortly.");
        break;
      case DenyKind::kSubjectLimit:
        w.Append("This account has ");
        w.AppendInt(d.limit_value);
        w.Append(
            " projects, keys and users in use, its plan's most; idle ones "
            "free up");
        if (d.retry_after_ms > 0) {
          w.Append(" in ");
          AppendDuration(w, d.retry_after_ms);
        }
        w.Append('.');
        break;
      default:
        if (d.reason.empty()) {
          w.Append("The request was denied.");
        } else {
          w.Append("The request was denied (");
          w.Append(Utf8Prefix(d.reason, kMaxQuotedBytes));
          w.Append(").");
        }
        break;
    }
  }
  if (!d.upgrade_plan.empty()) {
    w.Append(" Upgrade to the ");
    w.Append(Utf8Prefix(d.upgrade_plan, kMaxQuotedBytes));
    w.Append(" plan.");
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string_view HttpErrorType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 402:
      return "insufficient_quota";
    case 403:
      return "permission_denied";
    case 429:
      return "rate_limit_exceeded";
    default:
      return "server_error";
  }
}

HttpRendering::HttpRendering(const Decision& d, int64_t now_ms,
                             const HttpOptions& options) {
  const bool admitted = d.admitted();
  if (admitted) {
    status_ = 200;
  } else {
    status_ = d.status >= 300 && d.status <= 599 ? d.status : 500;
  }

  // Headers. Each is written at the writer's end and kept only if it fit.
  Writer hw(header_buf_.data(), header_buf_.size());
  size_t mark = 0;
  const auto begin = [&] { mark = hw.size(); };
  const auto end = [&](std::string_view name) {
    if (hw.ok()) {
      headers_[num_headers_++] = HttpHeader{name, hw.View(mark)};
      return true;
    }
    hw.Rewind(mark);
    return false;
  };

  if (!admitted && d.retry_after_ms > 0) {
    begin();
    hw.AppendInt(std::max<int64_t>(1, CeilSeconds(d.retry_after_ms)));
    end("Retry-After");
  }

  // An unlimited limit reports remaining > hard_limit (0): nothing to say.
  if (d.has_limit && d.remaining <= d.hard_limit) {
    const int64_t remaining = std::max<int64_t>(0, d.remaining);
    const bool has_reset = d.reset_ms > 0;
    const int64_t reset_s = CeilSeconds(d.reset_ms - now_ms);
    const bool has_window =
        d.window_start_ms > 0 && d.reset_ms > d.window_start_ms;
    // The policy id and the three numbers appear twice each (IETF and
    // X-RateLimit-*): each is rendered once, then its bytes are copied from
    // the header that holds them. Empty: not rendered (yet).
    std::string_view id_text, limit_text, remaining_text, reset_text;
    const auto append_int = [&](int64_t v, std::string_view* text) {
      const size_t at = hw.size();
      if (text->empty()) {
        hw.AppendInt(v);
        if (hw.ok()) *text = hw.View(at);
      } else {
        hw.Append(*text);
      }
    };
    if (options.ietf_headers) {
      begin();
      AppendSfString(hw, d.limit.limit_id);
      const size_t id_end = hw.size();
      hw.Append(";q=");
      append_int(d.hard_limit, &limit_text);
      if (has_window) {
        hw.Append(";w=");
        hw.AppendInt(CeilSeconds(d.reset_ms - d.window_start_ms));
      }
      if (end("RateLimit-Policy")) {
        id_text = hw.View(mark, id_end);
      } else {
        limit_text = {};
      }

      begin();
      if (id_text.empty()) {
        AppendSfString(hw, d.limit.limit_id);
      } else {
        hw.Append(id_text);
      }
      hw.Append(";r=");
      append_int(remaining, &remaining_text);
      if (has_reset) {
        hw.Append(";t=");
        append_int(reset_s, &reset_text);
      }
      if (!end("RateLimit")) remaining_text = reset_text = {};
    }
    if (options.x_ratelimit_headers) {
      begin();
      append_int(d.hard_limit, &limit_text);
      end("X-RateLimit-Limit");
      begin();
      append_int(remaining, &remaining_text);
      end("X-RateLimit-Remaining");
      if (has_reset) {
        begin();
        append_int(reset_s, &reset_text);
        end("X-RateLimit-Reset");
      }
    }
  }

  if (admitted && options.warning_headers) {
    static constexpr struct {
      uint32_t bit;
      std::string_view name;
    } kWarnings[] = {
        {kWarnSoftNudge, "soft_nudge"},
        {kWarnGrace, "grace"},
        {kWarnPastDue, "past_due"},
        {kWarnShadowDenied, "shadow_denied"},
    };
    begin();
    for (const auto& warning : kWarnings) {
      if ((d.warnings & warning.bit) == 0) continue;
      if (hw.size() != mark) hw.Append(", ");
      hw.Append(warning.name);
    }
    if (hw.size() != mark) {
      end("X-Plangate-Warning");
    } else {
      hw.Rewind(mark);
    }
    if (d.shadow) {
      begin();
      hw.Append("would_deny");
      end("X-Plangate-Shadow");
    }
  }

  if (!admitted && options.content_type_header) {
    begin();
    hw.Append("application/json");
    end("Content-Type");
  }
  header_size_ = hw.size();

  if (admitted) return;

  // Body: {"error":{"message":M,"type":T,"code":C,"param":null}}. The tail
  // after the message is sized first and the message cut to what is left,
  // so the closing braces always fit.
  constexpr std::string_view kHead = R"({"error":{"message":")";
  constexpr std::string_view kType = R"(","type":")";
  constexpr std::string_view kCode = R"(","code":)";
  constexpr std::string_view kTail = R"(,"param":null}})";
  const std::string_view type = HttpErrorType(status_);
  const std::string_view code = Utf8Prefix(
      d.reason.empty() ? DenyKindReason(d.deny) : d.reason, kMaxQuotedBytes);
  const size_t code_size = code.empty() ? 4 : JsonEscapedSize(code) + 2;
  const size_t tail_size =
      kType.size() + type.size() + kCode.size() + code_size + kTail.size();

  Writer bw(body_buf_.data(), body_buf_.size());
  bw.Append(kHead);
  const size_t message_limit = body_buf_.size() - tail_size;
  if (!d.message.empty()) {
    AppendJsonEscaped(bw, d.message, message_limit);
  } else {
    char sentence[512];
    Writer sw(sentence, sizeof(sentence));
    AppendGeneratedMessage(sw, d, now_ms);
    AppendJsonEscaped(bw, sw.View(0), message_limit);
  }
  bw.Append(kType);
  bw.Append(type);
  bw.Append(kCode);
  if (code.empty()) {
    bw.Append("null");
  } else {
    bw.Append('"');
    AppendJsonEscaped(bw, code, body_buf_.size());
    bw.Append('"');
  }
  bw.Append(kTail);
  body_size_ = bw.size();
}

HttpRendering::HttpRendering(const HttpRendering& other) { CopyFrom(other); }

HttpRendering& HttpRendering::operator=(const HttpRendering& other) {
  if (this != &other) CopyFrom(other);
  return *this;
}

void HttpRendering::CopyFrom(const HttpRendering& other) {
  status_ = other.status_;
  num_headers_ = other.num_headers_;
  header_size_ = other.header_size_;
  body_size_ = other.body_size_;
  std::memcpy(header_buf_.data(), other.header_buf_.data(), header_size_);
  std::memcpy(body_buf_.data(), other.body_buf_.data(), body_size_);
  for (size_t i = 0; i < num_headers_; ++i) {
    const HttpHeader& h = other.headers_[i];
    const size_t offset =
        static_cast<size_t>(h.value.data() - other.header_buf_.data());
    headers_[i] = HttpHeader{
        h.name, std::string_view(header_buf_.data() + offset, h.value.size())};
  }
}

std::string_view HttpRendering::header(std::string_view name) const {
  for (const HttpHeader& h : headers()) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

}  // namespace plangate
