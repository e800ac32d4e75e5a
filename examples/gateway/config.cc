// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "config.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "nlohmann/json.hpp"

namespace gateway {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kUsage =
    R"(usage: plangate_gateway --catalog FILE --keys FILE [flags]
       plangate_gateway --serve-mock HOST:PORT [--threads N]

An OpenAI-compatible and MCP reverse proxy that enforces the plans of a
plangate catalog on every request.

  --listen HOST:PORT       where to serve (default 127.0.0.1:8080; port 0
                           picks a free port, printed at start)
  --catalog FILE           the plan catalog (docs/catalog.md)
  --keys FILE              the API keys (examples/gateway/README.md)
  --accounts FILE          the accounts: plan, anchor, state, wallet
                           (docs/replay.md); without it only the catalog's
                           default_plan serves
  --upstream URL           http://host[:port][/base] to forward to, or
                           "mock" (default): a built-in mock upstream on a
                           free loopback port
  --threads N              worker threads (default: one per core)
  --no-enforce             proxy without calling plangate (for comparisons)
  --redis URL              share counts with other gateways through Redis
                           (redis://[[user]:password@]host[:port][/db])
                           or rediss://... for TLS, verified by default;
                           redis-sentinel://[[user]:pw@]h:p[,h:p...]/master
                           for the master Sentinel names
  --redis-tls-ca FILE      with rediss://, trust the CAs in FILE (PEM)
                           instead of the system's
  --redis-tls-ca-dir DIR   ... or in DIR (hashed, as by c_rehash)
  --redis-tls-cert FILE    client certificate (PEM), when Redis requires
                           one (tls-auth-clients); with --redis-tls-key
  --redis-tls-key FILE     its private key (PEM)
  --redis-tls-server-name NAME
                           the name the server's certificate must match,
                           also sent as SNI (default: the URL's host)
  --redis-tls-no-verify    accept any server certificate (testing only)
  --redis-sentinel-password PW
                           with redis-sentinel://, the sentinels' own
                           password (the URL's is the master's)
  --redis-prefix P         Redis key prefix (default pg)
  --sync-wait-ms N         with --redis, how long a request waits for the
                           first lease of a counter not synced yet before
                           it is answered 429 quota_syncing (default 500)
  --upstream-timeout-ms N  per upstream call (default 60000)
  --drain-timeout-ms N     on SIGINT/SIGTERM, how long in-flight requests
                           may take to finish (default 10000)
  --micros-per-1k-tokens N price of 1,000 tokens in micro-units, for the
                           cost meter and prepaid wallets (default 1000)
  --default-max-tokens N   completion estimate when a request sets no
                           max_tokens (default 256)
  --stream-extend-tokens N a stream that outgrows its estimate extends its
                           reservation N tokens at a time, and is ended with
                           the denial as its last event when an extension
                           is denied (default 64; 0: never extend)
  --mcp-denial MODE        how a denied MCP tools/call is answered, always
                           with HTTP 200: "error" (default), a JSON-RPC
                           error whose data says why; or "tool_result", a
                           tool result with isError: true and a text the
                           model can read (other methods: always "error")
  --serve-mock HOST:PORT   run only the mock upstream there
  --help                   this text

The upstream's API key, if it needs one, comes from the environment:
PLANGATE_UPSTREAM_API_KEY (sent as "Authorization: Bearer ...").
)";

// Quoted for a message, at most ~80 bytes of it (internal/json_path.h).
std::string Quote(std::string_view s) {
  return plangate::internal::JsonQuote(s);
}

// Collects "FILE: path: reason" lines.
class Problems {
 public:
  explicit Problems(std::string_view file) : file_(file) {}
  void Add(std::string_view path, std::string_view reason) {
    lines_.push_back(fmt::format("{}: {}: {}", file_, path, reason));
  }
  bool empty() const { return lines_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

// The reason of a JSON syntax error, without nlohmann's "[json.exception...]"
// prefix, the input it quotes cut to ~80 bytes.
std::string SyntaxError(std::string_view text) {
  try {
    const Json parsed = Json::parse(text);  // throws the error we want
    (void)parsed;
  } catch (const Json::exception& e) {
    return plangate::internal::BoundedJsonErrorText(e.what());
  }
  return "invalid JSON";
}

bool ParseInt(std::string_view text, int64_t min, int64_t max, int64_t* out) {
  int64_t v = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min ||
      v > max) {
    return false;
  }
  *out = v;
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string reason = std::strerror(err);
    if (err == ENOENT) {
      return absl::NotFoundError(
          fmt::format("{}: cannot open: {}", path, reason));
    }
    return absl::UnavailableError(
        fmt::format("{}: cannot open: {}", path, reason));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::UnavailableError(fmt::format("{}: read error", path));
  }
  return std::move(text).str();
}

absl::StatusOr<KeyStore> KeyStore::Parse(std::string_view text,
                                         std::string_view file_name) {
  Problems problems(file_name);
  const Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    problems.Add("keys", SyntaxError(text));
    return problems.ToStatus();
  }
  if (!root.is_array()) {
    problems.Add("keys", "must be a JSON array of keys");
    return problems.ToStatus();
  }
  KeyStore store;
  std::map<std::string, size_t> seen;  // secret -> index
  for (size_t i = 0; i < root.size(); ++i) {
    const Json& k = root[i];
    const std::string at = fmt::format("[{}]", i);
    if (!k.is_object()) {
      problems.Add(at, "must be an object");
      continue;
    }
    KeyRecord rec;
    std::string secret;
    bool ok = true;
    const auto fail = [&](std::string_view field, std::string_view reason) {
      problems.Add(plangate::internal::JsonMemberPath(at, field), reason);
      ok = false;
    };
    // A non-empty string field; `required` fields must be present.
    const auto text_field = [&](const char* field, bool required,
                                std::string* out) {
      const auto it = k.find(field);
      if (it == k.end()) {
        if (required) fail(field, "missing required field");
        return;
      }
      if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
        fail(field, "must be a non-empty string");
        return;
      }
      *out = it->get<std::string>();
    };
    for (const auto& [field, value] : k.items()) {
      if (field != "key" && field != "account" && field != "kind" &&
          field != "id" && field != "project" && field != "user" &&
          field != "byok") {
        fail(field, "unknown field");
      }
    }
    text_field("key", true, &secret);
    text_field("account", true, &rec.account);
    text_field("id", false, &rec.id);
    text_field("project", false, &rec.project);
    text_field("user", false, &rec.user);
    if (const auto it = k.find("kind"); it != k.end()) {
      const std::string kind = it->is_string() ? it->get<std::string>() : "";
      if (kind == "live") {
        rec.kind = plangate::KeyKind::kLive;
      } else if (kind == "test" || kind == "sandbox") {
        rec.kind = plangate::KeyKind::kTest;
      } else if (kind == "internal") {
        rec.kind = plangate::KeyKind::kInternal;
      } else {
        fail("kind", "must be live, test or internal");
      }
    }
    if (const auto it = k.find("byok"); it != k.end()) {
      if (!it->is_boolean()) {
        fail("byok", "must be true or false");
      } else {
        rec.byok = it->get<bool>();
      }
    }
    if (!secret.empty()) {
      const auto [prev, inserted] = seen.emplace(secret, i);
      if (!inserted) {
        fail("key", fmt::format("duplicate key (also [{}])", prev->second));
      }
    }
    if (!ok) continue;
    // The secret itself is the default id; give keys an "id" so that
    // secrets stay out of reports and Redis key names.
    if (rec.id.empty()) rec.id = secret;
    store.keys_.emplace(std::move(secret), std::move(rec));
  }
  if (!problems.empty()) return problems.ToStatus();
  return store;
}

absl::StatusOr<KeyStore> KeyStore::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const KeyRecord* KeyStore::Find(std::string_view secret) const {
  // absl::string_view is not std::string_view in Debian's Abseil.
  const auto it = keys_.find(absl::string_view(secret.data(), secret.size()));
  return it == keys_.end() ? nullptr : &it->second;
}

void KeyStore::ResolvePlans(
    const plangate::Catalog& catalog,
    const std::vector<plangate::replay::AccountSpec>& accounts) {
  std::map<std::string, std::string, std::less<>> plan_of;
  for (const auto& a : accounts) plan_of[a.id] = a.plan;
  for (auto& [secret, rec] : keys_) {
    const auto it = plan_of.find(rec.account);
    const plangate::Plan* plan = catalog.FindPlan(
        it != plan_of.end() ? it->second : catalog.default_plan());
    rec.prepaid = plan != nullptr && plan->wallet.required;
  }
}

absl::StatusOr<std::vector<plangate::replay::AccountSpec>> LoadAccountsFile(
    const std::string& path, const plangate::Catalog& catalog) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return plangate::replay::ParseAccounts(*text, path, catalog);
}

plangate::AccountUpdate AccountUpdateOf(
    const plangate::replay::AccountSpec& spec) {
  return {.account_id = spec.id,
          .plan_id = spec.plan,
          .anchor_ms = spec.anchor_ms,
          .state = spec.state,
          .past_due_deadline_ms = spec.past_due_until_ms,
          .scheduled_plan_id = spec.scheduled_plan,
          .default_model = spec.default_model,
          .overrides = spec.overrides};
}

absl::Status RegisterAccounts(
    plangate::Enforcer& enforcer,
    const std::vector<plangate::replay::AccountSpec>& accounts,
    std::string_view file_name, bool credit_wallets) {
  for (size_t i = 0; i < accounts.size(); ++i) {
    const plangate::replay::AccountSpec& spec = accounts[i];
    const auto fail = [&](const absl::Status& s) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: accounts[{}]: {}",
                                                    file_name, spec.line, i,
                                                    std::string(s.message())));
    };
    absl::Status s = enforcer.UpsertAccount(AccountUpdateOf(spec));
    if (!s.ok()) return fail(s);
    if (credit_wallets && spec.wallet_micros > 0) {
      auto balance = enforcer.UpdateWallet(
          {.account_id = spec.id, .credit_micros = spec.wallet_micros});
      if (!balance.ok()) return fail(balance.status());
    }
  }
  return absl::OkStatus();
}

absl::Status SeedWallets(
    plangate::Enforcer& enforcer,
    const std::vector<plangate::replay::AccountSpec>& accounts) {
  for (const plangate::replay::AccountSpec& spec : accounts) {
    if (spec.wallet_micros <= 0) continue;
    auto balance = enforcer.UpdateWallet(
        {.account_id = spec.id,
         .credit_micros = spec.wallet_micros,
         .credit_id =
             fmt::format("accounts-file:{}:{}", spec.id, spec.wallet_micros)});
    if (!balance.ok()) return balance.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(
        fmt::format("must be HOST:PORT (got {})", Quote(text)));
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return bad();
    }
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad();
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) return bad();
  int64_t p = 0;
  if (!ParseInt(port, 0, 65535, &p)) {
    return absl::InvalidArgumentError(fmt::format(
        "port must be an integer in [0, 65535] (got {})", Quote(port)));
  }
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.starts_with("https://")) {
    return absl::InvalidArgumentError(
        "https is not supported; put a TLS-originating proxy (e.g. stunnel, "
        "envoy) between the gateway and the upstream");
  }
  if (!url.starts_with(kScheme)) {
    return absl::InvalidArgumentError(fmt::format(
        "must be http://host[:port][/base] or \"mock\" (got {})", Quote(url)));
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path =
      slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.empty()) {
    return absl::InvalidArgumentError(fmt::format("no host in {}", Quote(url)));
  }
  UpstreamUrl u;
  u.host_header = std::string(authority);
  u.base_path = std::string(path);
  const bool bracketed = authority.front() == '[';
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string_view::npos &&
                        (!bracketed || authority[colon - 1] == ']');
  if (has_port) {
    absl::StatusOr<HostPort> hp = ParseHostPort(authority);
    if (!hp.ok()) return hp.status();
    u.host = hp->host;
    u.port = hp->port;
  } else {
    u.host = std::string(bracketed ? authority.substr(1, authority.size() - 2)
                                   : authority);
  }
  if (u.host.empty() || u.port == 0) {
    return absl::InvalidArgumentError(
        fmt::format("bad host or port in {}", Quote(url)));
  }
  return u;
}

std::string_view Usage() { return kUsage; }

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  const auto bad = [](std::string_view flag, std::string_view reason) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", flag, reason));
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (const size_t eq = arg.find('=');
        arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const auto need_value = [&]() -> absl::Status {
      if (has_value) return absl::OkStatus();
      if (i + 1 >= argc) return bad(arg, "missing value");
      value = argv[++i];
      has_value = true;
      return absl::OkStatus();
    };
    const auto int_value = [&](int64_t min, int64_t max,
                               int64_t* out) -> absl::Status {
      if (absl::Status s = need_value(); !s.ok()) return s;
      if (!ParseInt(value, min, max, out)) {
        return bad(arg, fmt::format("must be an integer in [{}, {}] (got {})",
                                    min, max, Quote(value)));
      }
      return absl::OkStatus();
    };
    const auto string_value = [&](std::string* out) -> absl::Status {
      if (absl::Status s = need_value(); !s.ok()) return s;
      if (value.empty()) return bad(arg, "must not be empty");
      *out = std::string(value);
      return absl::OkStatus();
    };
    absl::Status s;
    int64_t n = 0;
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
    } else if (arg == "--no-enforce") {
      flags.enforce = false;
    } else if (arg == "--listen") {
      if (s = need_value(); s.ok()) {
        absl::StatusOr<HostPort> hp = ParseHostPort(value);
        if (!hp.ok()) return bad(arg, std::string(hp.status().message()));
        flags.listen = *hp;
      }
    } else if (arg == "--catalog") {
      s = string_value(&flags.catalog);
    } else if (arg == "--keys") {
      s = string_value(&flags.keys);
    } else if (arg == "--accounts") {
      s = string_value(&flags.accounts);
    } else if (arg == "--upstream") {
      s = string_value(&flags.upstream);
    } else if (arg == "--redis") {
      s = string_value(&flags.redis);
    } else if (arg == "--redis-prefix") {
      s = string_value(&flags.redis_prefix);
    } else if (arg == "--redis-tls-ca") {
      s = string_value(&flags.redis_tls_ca);
    } else if (arg == "--redis-tls-ca-dir") {
      s = string_value(&flags.redis_tls_ca_dir);
    } else if (arg == "--redis-tls-cert") {
      s = string_value(&flags.redis_tls_cert);
    } else if (arg == "--redis-tls-key") {
      s = string_value(&flags.redis_tls_key);
    } else if (arg == "--redis-tls-server-name") {
      s = string_value(&flags.redis_tls_server_name);
    } else if (arg == "--redis-tls-no-verify") {
      flags.redis_tls_verify = false;
    } else if (arg == "--redis-sentinel-password") {
      s = string_value(&flags.redis_sentinel_password);
    } else if (arg == "--serve-mock") {
      s = string_value(&flags.serve_mock);
    } else if (arg == "--mcp-denial") {
      if (s = need_value(); s.ok()) {
        if (value == "error") {
          flags.mcp_denial = McpDenial::kJsonRpcError;
        } else if (value == "tool_result") {
          flags.mcp_denial = McpDenial::kToolResult;
        } else {
          return bad(arg, fmt::format("must be error or tool_result (got {})",
                                      Quote(value)));
        }
      }
    } else if (arg == "--threads") {
      if (s = int_value(1, 256, &n); s.ok())
        flags.threads = static_cast<int>(n);
    } else if (arg == "--upstream-timeout-ms") {
      if (s = int_value(1, 3'600'000, &n); s.ok()) {
        flags.upstream_timeout = std::chrono::milliseconds(n);
      }
    } else if (arg == "--sync-wait-ms") {
      if (s = int_value(0, 60'000, &n); s.ok()) {
        flags.sync_wait = std::chrono::milliseconds(n);
      }
    } else if (arg == "--drain-timeout-ms") {
      if (s = int_value(0, 3'600'000, &n); s.ok()) {
        flags.drain_timeout = std::chrono::milliseconds(n);
      }
    } else if (arg == "--micros-per-1k-tokens") {
      s = int_value(0, 1'000'000'000, &flags.micros_per_1k_tokens);
    } else if (arg == "--default-max-tokens") {
      s = int_value(0, 10'000'000, &flags.default_max_tokens);
    } else if (arg == "--stream-extend-tokens") {
      s = int_value(0, 10'000'000, &flags.stream_extend_tokens);
    } else {
      return absl::InvalidArgumentError(
          fmt::format("unknown flag {}", Quote(argv[i])));
    }
    if (!s.ok()) return s;
    if (has_value && (arg == "--help" || arg == "--no-enforce" ||
                      arg == "--redis-tls-no-verify")) {
      return bad(arg, "takes no value");
    }
  }
  if (flags.help || !flags.serve_mock.empty()) return flags;
  if (flags.catalog.empty()) return bad("--catalog", "required");
  if (flags.keys.empty()) return bad("--keys", "required");
  return flags;
}

}  // namespace gateway
