// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// tls_context.cc: MakeTlsContext, PrepareTlsStream, TlsHandshakeError.
//
// Name verification is OpenSSL's own (SSL_set1_host, or the verify param's
// IP for an address), so a mismatch shows up in the X509 verify result as
// "hostname mismatch" / "IP address mismatch", like every other reason.

#include "redis/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>
#include <utility>

#include "absl/strings/str_cat.h"

namespace plangate::internal::redis {
namespace {

namespace asio = boost::asio;

// The oldest queued OpenSSL error as text (and clears the queue).
std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

bool IsIpAddress(const std::string& name) {
  boost::system::error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

}  // namespace

std::string TlsServerName(const RedisOptions& options) {
  return options.tls_server_name.empty() ? options.host
                                         : options.tls_server_name;
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeTlsContext(
    const RedisOptions& options) {
  auto ctx =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return absl::InternalError(
        absl::StrCat("redis TLS: cannot require TLS 1.2: ", OpenSslError()));
  }
  if (!options.tls_ca_file.empty() || !options.tls_ca_dir.empty()) {
    const char* file =
        options.tls_ca_file.empty() ? nullptr : options.tls_ca_file.c_str();
    const char* dir =
        options.tls_ca_dir.empty() ? nullptr : options.tls_ca_dir.c_str();
    if (SSL_CTX_load_verify_locations(native, file, dir) != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "redis TLS: cannot load the CA ",
          file != nullptr ? absl::StrCat("file \"", options.tls_ca_file, "\"")
                          : absl::StrCat("dir \"", options.tls_ca_dir, "\""),
          ": ", OpenSslError()));
    }
  } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "redis TLS: cannot load the default CA paths: ", OpenSslError()));
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "redis TLS: tls_cert_file and tls_key_file go together");
  }
  if (!options.tls_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(
            native, options.tls_cert_file.c_str()) != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("redis TLS: cannot load the client certificate \"",
                       options.tls_cert_file, "\": ", OpenSslError()));
    }
    if (SSL_CTX_use_PrivateKey_file(native, options.tls_key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("redis TLS: cannot load the client key \"",
                       options.tls_key_file, "\": ", OpenSslError()));
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("redis TLS: the client key \"", options.tls_key_file,
                       "\" does not match the certificate: ", OpenSslError()));
    }
  }
  SSL_CTX_set_verify(
      native, options.tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return ctx;
}

absl::Status PrepareTlsStream(
    const RedisOptions& options,
    asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  SSL* ssl = stream.native_handle();
  const std::string name = TlsServerName(options);
  const bool ip = IsIpAddress(name);
  ERR_clear_error();
  if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis TLS: bad server name \"", name, "\": ", OpenSslError()));
  }
  if (!options.tls_verify) return absl::OkStatus();
  const int ok =
      ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
         : SSL_set1_host(ssl, name.c_str());
  if (ok != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis TLS: cannot verify the server name \"", name,
                     "\": ", OpenSslError()));
  }
  return absl::OkStatus();
}

absl::Status TlsHandshakeError(asio::ssl::stream<asio::ip::tcp::socket>& stream,
                               const boost::system::error_code& ec,
                               const std::string& at) {
  const long verify = SSL_get_verify_result(stream.native_handle());
  ERR_clear_error();
  if (verify != X509_V_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis TLS handshake failed: certificate verify failed: ",
                     X509_verify_cert_error_string(verify), at));
  }
  return absl::UnavailableError(
      absl::StrCat("redis TLS handshake failed: ", ec.message(), at));
}

}  // namespace plangate::internal::redis
