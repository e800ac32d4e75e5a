// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// quotactl_run.h: what the quotactl usage tests share: a private temp dir
// and running the quotactl binary (PLANGATE_QUOTACTL) as a user would, its
// stdout and stderr captured.
//
// Thread safety: none; use from the test thread.

#ifndef PLANGATE_TESTS_TOOLS_QUOTACTL_RUN_H_
#define PLANGATE_TESTS_TOOLS_QUOTACTL_RUN_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern char** environ;

namespace plangate::testing {

// A private temp dir holding the catalog; removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "plangate-usage-test-XXXXXX")
            .string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct RunResult {
  int exit_code = -1;  // -1: did not exit normally (crashed)
  std::string out;
  std::string err;
};

// Runs quotactl with `args`, stdout and stderr to files in `dir`.
inline RunResult RunQuotactl(const TempDir& dir,
                             std::vector<std::string> args) {
  args.insert(args.begin(), PLANGATE_QUOTACTL);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  RunResult r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_TOOLS_QUOTACTL_RUN_H_
