// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// tls_context.h: the OpenSSL pieces of a TLS connection to Redis.
//
// MakeTlsContext builds the boost::asio::ssl::context a Client shares among
// its connections, from RedisOptions: TLS 1.2 or later, the trusted CAs
// (tls_ca_file / tls_ca_dir, else OpenSSL's default paths), the client
// certificate and key, and peer verification unless tls_verify is false.
// PrepareTlsStream sets a new connection's SNI and the name OpenSSL checks
// the certificate against (a DNS name, or an IP address against the IP
// SANs). TlsHandshakeError turns a failed handshake into a message that says
// why, using the X509 verify result when verification failed.
//
// Thread safety: the functions are reentrant. An ssl::context is not
// modified after MakeTlsContext and may then be shared by streams on any
// thread; a stream belongs to its connection's strand.

#ifndef PLANGATE_REDIS_TLS_CONTEXT_H_
#define PLANGATE_REDIS_TLS_CONTEXT_H_

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/sync.h"

namespace plangate::internal::redis {

// FailedPrecondition naming the file OpenSSL could not load.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeTlsContext(
    const RedisOptions& options);

// The name the server's certificate must match: tls_server_name, else host.
std::string TlsServerName(const RedisOptions& options);

// Sets SNI (unless the name is an IP address) and the verified name or IP.
absl::Status PrepareTlsStream(
    const RedisOptions& options,
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& stream);

// Why the handshake of `stream` failed with `ec`: FailedPrecondition with
// "certificate verify failed: <X509 reason>" when the peer's certificate was
// refused, Unavailable with the OpenSSL error otherwise. `at` is appended
// (" (at host:port)").
absl::Status TlsHandshakeError(
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& stream,
    const boost::system::error_code& ec, const std::string& at);

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_TLS_CONTEXT_H_
