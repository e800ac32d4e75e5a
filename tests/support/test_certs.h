// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// test_certs.h: a throwaway PKI for the TLS tests, made at run time with
// the openssl CLI (PLANGATE_TEST_OPENSSL, else `openssl` on PATH) in a
// fresh temp dir that the destructor removes:
//
//   ca.crt / ca.key             the CA the servers' certificates chain to
//   other_ca.crt                an unrelated CA (the "wrong CA" case)
//   server.crt / server.key     for IP:127.0.0.1 and DNS:localhost
//   expired.crt                 the same names and key, expired yesterday
//   wrong_name.crt              DNS:wrong.example only, same key
//   client.crt / client.key     a client certificate (clientAuth) from ca
//
// Thread safety: none; use it from the test thread.

#ifndef PLANGATE_TESTS_SUPPORT_TEST_CERTS_H_
#define PLANGATE_TESTS_SUPPORT_TEST_CERTS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace plangate::testing {

class TestCerts {
 public:
  // FailedPrecondition without openssl; Internal (with openssl's output)
  // when a step fails.
  static absl::StatusOr<std::unique_ptr<TestCerts>> Make();
  ~TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // The full path of one of the files above.
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  TestCerts() = default;
  absl::Status Run(const std::string& args) const;

  std::string openssl_;
  std::string dir_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SUPPORT_TEST_CERTS_H_
