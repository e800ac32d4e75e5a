// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_url.cc: ParseRedisUrl (declared in plangate/sync.h).
//
//   redis://[[user]:password@]host[:port][/db]
//   rediss://...  (the same, over TLS)
//   either with ?cluster=1: a Redis Cluster seed (RedisOptions::cluster)
//   unix:///path/to.sock[?db=N]
//   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]
//   rediss-sentinel://...  (the same, over TLS)
//
// The user and password may be percent-encoded (a password containing '@',
// ':' or '/' must be). An IPv6 host is written in brackets. Error messages
// quote the URL with the password replaced by "***".

#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "plangate/sync.h"

namespace plangate {
namespace {

// Debian's Abseil has its own string_view, not std::string_view.
absl::string_view Av(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The URL for messages: the password (or a lone credential) becomes "***".
std::string Redact(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const size_t auth_begin = scheme_end + 3;
  const size_t auth_end = url.find_first_of("/?#", auth_begin);
  const std::string_view authority = url.substr(
      auth_begin,
      auth_end == std::string_view::npos ? auth_end : auth_end - auth_begin);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const std::string_view userinfo = authority.substr(0, at);
  const size_t colon = userinfo.find(':');
  const std::string_view kept =
      colon == std::string_view::npos ? "" : userinfo.substr(0, colon + 1);
  return absl::StrCat(Av(url.substr(0, auth_begin)), Av(kept), "***",
                      Av(url.substr(auth_begin + at)));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// A decimal number of at most 10 digits, no sign; -1 if not one.
int64_t ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 10) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

class UrlParser {
 public:
  explicit UrlParser(std::string_view url) : url_(url) {}

  absl::StatusOr<RedisOptions> Parse() {
    if (StartsWithNoCase(url_, "redis://")) return ParseTcp(url_.substr(8));
    if (StartsWithNoCase(url_, "unix://")) return ParseUnix(url_.substr(7));
    if (StartsWithNoCase(url_, "rediss://")) {
      absl::StatusOr<RedisOptions> options = ParseTcp(url_.substr(9));
      if (options.ok()) options->tls = true;
      return options;
    }
    if (StartsWithNoCase(url_, "redis-sentinel://")) {
      return ParseSentinel(url_.substr(17));
    }
    if (StartsWithNoCase(url_, "rediss-sentinel://")) {
      absl::StatusOr<RedisOptions> options = ParseSentinel(url_.substr(18));
      if (options.ok()) options->tls = true;
      return options;
    }
    return Error(
        "scheme must be redis://, rediss://, unix://, redis-sentinel:// or "
        "rediss-sentinel://");
  }

 private:
  absl::Status Error(std::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat("redis URL \"", Redact(url_), "\": ", Av(problem)));
  }

  absl::Status ParseDb(std::string_view text, RedisOptions* options) const {
    const int64_t db = ParseDecimal(text);
    if (db < 0 || db > INT32_MAX) {
      return Error(absl::StrCat("db must be a non-negative integer, got \"",
                                Av(text), "\""));
    }
    options->db = static_cast<int>(db);
    return absl::OkStatus();
  }

  // Takes "[user]:password@" off the front of `authority`, if there.
  absl::Status ParseUserinfo(std::string_view* authority,
                             RedisOptions* options) const {
    const size_t at = authority->rfind('@');
    if (at == std::string_view::npos) return absl::OkStatus();
    const std::string_view userinfo = authority->substr(0, at);
    authority->remove_prefix(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return Error(
          "credentials must be [user]:password@ (a password alone is "
          "written :password@)");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &options->user)) {
      return Error("bad percent-encoding in the user");
    }
    if (!PercentDecode(userinfo.substr(colon + 1), &options->password)) {
      return Error("bad percent-encoding in the password");
    }
    if (options->password.empty()) {
      return Error("the password after ':' is empty");
    }
    return absl::OkStatus();
  }

  // host[:port] or [v6]:port; *port is left alone when none is given.
  absl::Status ParseHostPort(std::string_view authority, std::string* host,
                             int* port) const {
    std::string_view port_text;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
      const size_t close = authority.find(']');
      if (close == std::string_view::npos) {
        return Error("IPv6 host is missing its closing ']'");
      }
      *host = std::string(authority.substr(1, close - 1));
      const std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') {
          return Error(absl::StrCat("unexpected \"", Av(after),
                                    "\" after the IPv6 host"));
        }
        port_text = after.substr(1);
        has_port = true;
      }
    } else {
      const size_t colon = authority.find(':');
      if (colon != std::string_view::npos &&
          authority.find(':', colon + 1) != std::string_view::npos) {
        return Error("an IPv6 host must be written in brackets ([::1]:6379)");
      }
      *host = std::string(authority.substr(0, colon));
      if (colon != std::string_view::npos) {
        port_text = authority.substr(colon + 1);
        has_port = true;
      }
    }
    if (host->empty()) return Error("host is empty");
    if (!has_port) return absl::OkStatus();
    if (port_text.empty()) return Error("port is empty");
    if (port_text.find_first_not_of("0123456789") != std::string_view::npos) {
      return Error(
          absl::StrCat("port must be a number, got \"", Av(port_text), "\""));
    }
    const int64_t value = ParseDecimal(port_text);
    if (value < 1 || value > 65535) return Error("port must be in [1, 65535]");
    *port = static_cast<int>(value);
    return absl::OkStatus();
  }

  absl::StatusOr<RedisOptions> ParseSentinel(std::string_view rest) const {
    RedisOptions options;
    if (rest.find_first_of("?#") != std::string_view::npos) {
      return Error(
          "query and fragment are not supported in redis-sentinel:// URLs");
    }
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      return Error(
          "the master name is missing "
          "(redis-sentinel://host:port[,host:port...]/mymaster)");
    }
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path = rest.substr(slash + 1);
    const size_t slash2 = path.find('/');
    const std::string_view master = path.substr(0, slash2);
    if (master.empty()) return Error("the master name is empty");
    if (!PercentDecode(master, &options.sentinel_master)) {
      return Error("bad percent-encoding in the master name");
    }
    if (slash2 != std::string_view::npos) {
      const std::string_view db = path.substr(slash2 + 1);
      if (!db.empty()) {
        if (absl::Status st = ParseDb(db, &options); !st.ok()) return st;
      }
    }
    if (absl::Status st = ParseUserinfo(&authority, &options); !st.ok()) {
      return st;
    }
    if (authority.empty()) return Error("no sentinel address");
    while (true) {
      const size_t comma = authority.find(',');
      RedisOptions::Address address;
      if (absl::Status st = ParseHostPort(authority.substr(0, comma),
                                          &address.host, &address.port);
          !st.ok()) {
        return st;
      }
      options.sentinels.push_back(std::move(address));
      if (comma == std::string_view::npos) break;
      authority.remove_prefix(comma + 1);
    }
    return options;
  }

  absl::StatusOr<RedisOptions> ParseTcp(std::string_view rest) const {
    RedisOptions options;
    // The one query parameter: cluster=1 (RedisOptions::cluster).
    if (const size_t q = rest.find('?'); q != std::string_view::npos) {
      const std::string_view query = rest.substr(q + 1);
      if (query == "cluster=1" || query == "cluster=true" ||
          query == "cluster=yes") {
        options.cluster = true;
        rest = rest.substr(0, q);
      }
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
      return Error(
          "query and fragment are not supported in redis:// URLs (the db "
          "goes in the path: redis://host:port/db)");
    }
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
      const std::string_view db = rest.substr(slash + 1);
      if (!db.empty()) {
        absl::Status s = ParseDb(db, &options);
        if (!s.ok()) return s;
      }
    }

    if (absl::Status st = ParseUserinfo(&authority, &options); !st.ok()) {
      return st;
    }
    if (absl::Status st =
            ParseHostPort(authority, &options.host, &options.port);
        !st.ok()) {
      return st;
    }
    if (options.cluster && options.db != 0) {
      return Error("a Redis Cluster has only db 0");
    }
    return options;
  }

  absl::StatusOr<RedisOptions> ParseUnix(std::string_view rest) const {
    RedisOptions options;
    if (rest.find('#') != std::string_view::npos) {
      return Error("fragment is not supported");
    }
    const size_t q = rest.find('?');
    const std::string_view path = rest.substr(0, q);
    if (path.empty()) return Error("socket path is empty");
    if (path.front() != '/') {
      return Error("socket path must be absolute (unix:///path/to.sock)");
    }
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Error(absl::StrCat("socket path is longer than ",
                                sizeof(sockaddr_un::sun_path) - 1, " bytes"));
    }
    options.unix_socket = std::string(path);
    if (q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view param = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view()
                                              : query.substr(amp + 1);
        const size_t eq = param.find('=');
        const std::string_view key = param.substr(0, eq);
        if (key != "db") {
          return Error(absl::StrCat("unknown parameter \"", Av(key),
                                    "\" (only db is supported)"));
        }
        absl::Status s =
            ParseDb(eq == std::string_view::npos ? std::string_view()
                                                 : param.substr(eq + 1),
                    &options);
        if (!s.ok()) return s;
      }
    }
    return options;
  }

  std::string_view url_;
};

}  // namespace

absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url) {
  return UrlParser(url).Parse();
}

}  // namespace plangate
