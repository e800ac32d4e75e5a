// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// http.h: a Decision rendered as an HTTP status, headers and error body.
//
// HttpRendering turns a Decision into what a gateway sends back:
//   - the status code (200 when admitted, the decision's status otherwise);
//   - `RateLimit-Policy` and `RateLimit` as structured fields, per the IETF
//     httpapi draft (draft-ietf-httpapi-ratelimit-headers), for the deciding
//     limit;
//   - `Retry-After` on a denial that says when the request may fit;
//   - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`;
//   - `X-Plangate-Warning` (soft_nudge, grace, past_due, shadow_denied) and
//     `X-Plangate-Shadow: would_deny` on admitted decisions;
//   - for a denial, an OpenAI-style JSON error body with its
//     `Content-Type: application/json`:
//       {"error":{"message":"...","type":"rate_limit_exceeded",
//                 "code":"rate_limited","param":null}}
//
// Rendering allocates nothing: every header value and the body live in
// fixed buffers inside the object, so it may run on the request path before
// the first byte of a streamed (SSE) response.
//
//   plangate::Decision d = enforcer->Check(request);
//   plangate::HttpRendering http(d, request.now_ms);
//   for (const plangate::HttpHeader& h : http.headers()) {
//     response.AddHeader(h.name, h.value);
//   }
//   if (!d.admitted()) return response.Send(http.status(), http.body());
//
// Header and body views point into the HttpRendering (values) or into
// static storage (names): they stay valid while the object lives and
// unmodified. Copying rebinds the copy's views to its own buffers.
//
// Thread safety: a value type; distinct objects may be used concurrently,
// and const methods of one object may be called from multiple threads
// without external synchronization.

#ifndef PLANGATE_HTTP_H_
#define PLANGATE_HTTP_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "plangate/decision.h"

namespace plangate {

struct HttpHeader {
  std::string_view name;  // canonical case, e.g. "RateLimit-Policy"
  std::string_view value;
};

// Which header families to render. Retry-After is always rendered.
struct HttpOptions {
  // `RateLimit-Policy` and `RateLimit` (IETF draft). Default: true.
  bool ietf_headers = true;
  // `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
  // Default: true.
  bool x_ratelimit_headers = true;
  // `X-Plangate-Warning` and `X-Plangate-Shadow`. Default: true.
  bool warning_headers = true;
  // `Content-Type: application/json` with a denial's body. Default: true.
  bool content_type_header = true;
};

// The HTTP form of one Decision, rendered once at construction.
//
// Limit headers (IETF and X-RateLimit-*) appear only when the decision has
// a deciding limit (`has_limit`) that is not unlimited. Their numbers are:
//   limit      hard_limit: the cap actually enforced, grace included,
//              consistent with `remaining`;
//   remaining  Decision::remaining, at least 0;
//   reset      ceil((reset_ms - now_ms) / 1000) seconds, at least 0;
//   window     ceil((reset_ms - window_start_ms) / 1000) seconds, the `w`
//              parameter, left out when the window's start is unknown.
// So a 429 from a sliding 60/minute limit whose window ends in 15.8 s and
// which fits the request again in 1.5 s renders
//   Retry-After: 2
//   RateLimit-Policy: "burst";q=60;w=60
//   RateLimit: "burst";r=0;t=16
//
// The policy id is the limit's id as an sf-string: `"` and `\` are escaped
// and any byte sequence outside printable ASCII becomes `_`, so the value
// can never break the header; RateLimit and RateLimit-Policy always spell
// an id the same way. A header whose value would not fit in the header
// buffer (a limit id of several hundred bytes) is left out whole.
//
// The body's message is Decision::message when set, else a generated
// sentence ("Monthly limit of 50000 requests reached for monthly; resets in
// 3 days."). Every string is JSON-escaped, invalid UTF-8 becomes U+FFFD, and
// a message too long for the body buffer is cut at a character boundary:
// the body is always valid JSON.
class HttpRendering {
 public:
  static constexpr size_t kMaxHeaders = 9;
  static constexpr size_t kHeaderBufferSize = 1024;
  static constexpr size_t kBodyBufferSize = 2048;

  // now_ms: the request's instant (Unix ms), the origin of Retry-After's
  // and the reset's seconds.
  HttpRendering(const Decision& d, int64_t now_ms,
                const HttpOptions& options = {});

  HttpRendering(const HttpRendering& other);
  HttpRendering& operator=(const HttpRendering& other);

  // 200 when the decision admitted; else the decision's status (500 when
  // that is not a valid HTTP status).
  int status() const { return status_; }

  // In this order, each at most once: Retry-After, RateLimit-Policy,
  // RateLimit, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset,
  // X-Plangate-Warning, X-Plangate-Shadow, Content-Type.
  std::span<const HttpHeader> headers() const {
    return {headers_.data(), num_headers_};
  }

  // The value of the named header (case-insensitive), or empty if absent.
  std::string_view header(std::string_view name) const;

  // The JSON error body for a denial; empty when admitted.
  std::string_view body() const { return {body_buf_.data(), body_size_}; }

 private:
  void CopyFrom(const HttpRendering& other);

  int status_ = 200;
  size_t num_headers_ = 0;
  size_t header_size_ = 0;  // bytes used in header_buf_
  size_t body_size_ = 0;    // bytes used in body_buf_
  // Every value points into header_buf_; every name is a static literal.
  std::array<HttpHeader, kMaxHeaders> headers_;
  std::array<char, kHeaderBufferSize> header_buf_;
  std::array<char, kBodyBufferSize> body_buf_;
};

// The OpenAI-style error type for a status: "insufficient_quota" (402),
// "rate_limit_exceeded" (429), "permission_denied" (403),
// "invalid_request_error" (400), else "server_error".
std::string_view HttpErrorType(int status);

}  // namespace plangate

#endif  // PLANGATE_HTTP_H_
