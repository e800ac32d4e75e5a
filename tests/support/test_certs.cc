// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "support/test_certs.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace plangate::testing {
namespace {

std::string FindOpenssl() {
  const char* env = std::getenv("PLANGATE_TEST_OPENSSL");
  if (env != nullptr && *env != '\0') return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/openssl";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestCerts>> TestCerts::Make() {
  std::unique_ptr<TestCerts> certs(new TestCerts());
  certs->openssl_ = FindOpenssl();
  if (certs->openssl_.empty()) {
    return absl::FailedPreconditionError(
        "openssl not found on PATH: install it (apt-get install openssl) or "
        "set PLANGATE_TEST_OPENSSL to its path");
  }
  std::string dir = "/tmp/plangate-certs.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::UnavailableError("cannot create a temp dir for certs");
  }
  certs->dir_ = dir;
  {
    std::ofstream ext(certs->Path("server.ext"));
    ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
           "extendedKeyUsage=serverAuth\n";
    std::ofstream wrong(certs->Path("wrong_name.ext"));
    wrong << "subjectAltName=DNS:wrong.example\n"
             "extendedKeyUsage=serverAuth\n";
    std::ofstream client(certs->Path("client.ext"));
    client << "extendedKeyUsage=clientAuth\n";
  }
  const std::string d = certs->dir_ + "/";
  const std::string new_ca = "req -x509 -newkey rsa:2048 -nodes -days 2 ";
  const std::string issue = absl::StrCat("x509 -req -CA ", d, "ca.crt -CAkey ",
                                         d, "ca.key -CAcreateserial ");
  for (const std::string& step : {
           absl::StrCat(new_ca, "-keyout ", d, "ca.key -out ", d,
                        "ca.crt -subj /CN=plangate-test-ca"),
           absl::StrCat(new_ca, "-keyout ", d, "other_ca.key -out ", d,
                        "other_ca.crt -subj /CN=plangate-other-ca"),
           absl::StrCat("req -newkey rsa:2048 -nodes -keyout ", d,
                        "server.key -out ", d, "server.csr -subj /CN=server"),
           absl::StrCat(issue, "-days 2 -in ", d, "server.csr -extfile ", d,
                        "server.ext -out ", d, "server.crt"),
           absl::StrCat(issue, "-days -1 -in ", d, "server.csr -extfile ", d,
                        "server.ext -out ", d, "expired.crt"),
           absl::StrCat(issue, "-days 2 -in ", d, "server.csr -extfile ", d,
                        "wrong_name.ext -out ", d, "wrong_name.crt"),
           absl::StrCat("req -newkey rsa:2048 -nodes -keyout ", d,
                        "client.key -out ", d, "client.csr -subj /CN=client"),
           absl::StrCat(issue, "-days 2 -in ", d, "client.csr -extfile ", d,
                        "client.ext -out ", d, "client.crt"),
       }) {
    absl::Status s = certs->Run(step);
    if (!s.ok()) return s;
  }
  return certs;
}

absl::Status TestCerts::Run(const std::string& args) const {
  const std::string log = Path("openssl.log");
  const std::string command =
      absl::StrCat(openssl_, " ", args, " >", log, " 2>&1 </dev/null");
  const int rc = std::system(command.c_str());
  if (rc == 0) return absl::OkStatus();
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  return absl::InternalError(
      absl::StrCat("openssl ", args, " failed (", rc, "): ", out.str()));
}

TestCerts::~TestCerts() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace plangate::testing
