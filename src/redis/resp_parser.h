// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// resp_parser.h: an incremental, bounded parser of RESP2 replies (the
// protocol a Redis server speaks unless HELLO 3 is sent): simple strings,
// errors, integers, bulk strings and arrays, nil bulk strings and nil arrays.
//
// Bytes are fed as they arrive; Next() returns one complete reply at a time.
// Everything a server can send is bounded (nesting depth, bulk length, array
// length, line length), and anything malformed is an InvalidArgument error
// that says what and where ("RESP protocol error at byte 17: ..."). After an
// error the parser stays failed: the connection must be dropped, since the
// stream can no longer be framed.
//
// Thread safety: none; a RespParser belongs to one connection (its strand).

#ifndef PLANGATE_REDIS_RESP_PARSER_H_
#define PLANGATE_REDIS_RESP_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "redis/redis_client.h"

namespace plangate::internal::redis {

struct RespLimits {
  int max_depth = 16;                           // nested arrays
  int64_t max_bulk_bytes = int64_t{512} << 20;  // Redis' proto-max-bulk-len
  int64_t max_array_elements = int64_t{1} << 24;
  size_t max_line_bytes = size_t{64} << 10;  // +status, -error, :int, headers
};

class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // Appends bytes read from the connection.
  void Feed(std::string_view bytes);
  // true and *reply set: one complete reply was consumed; false: more bytes
  // are needed; InvalidArgument: the stream is malformed (sticky).
  absl::StatusOr<bool> Next(Reply* reply);

  // Bytes fed but not yet consumed by a complete reply.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  enum class Result { kDone, kNeedMore, kError };
  Result Parse(size_t* pos, int depth, Reply* out);
  // The line starting at *pos (without CRLF); advances past the CRLF.
  Result Line(size_t* pos, std::string_view* line);
  Result Integer(size_t* pos, int64_t* value);
  Result Fail(size_t at, std::string_view what);

  RespLimits limits_;
  std::string buf_;
  size_t pos_ = 0;         // start of the next reply in buf_
  size_t need_ = 0;        // buffered() the pending reply needs at least
  uint64_t consumed_ = 0;  // bytes dropped from buf_'s front, for messages
  absl::Status error_;
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_RESP_PARSER_H_
