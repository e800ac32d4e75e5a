// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// resp_parser.cc: RespParser.
//
// Next() parses from the start of the pending reply each time; an
// incomplete reply is parsed again once more bytes came. A bulk string that
// is not complete yet records how many bytes the reply needs at least, so a
// large value arriving in many reads is not rescanned for every read.
// Recursion is bounded by RespLimits::max_depth.

#include "redis/resp_parser.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace plangate::internal::redis {

void RespParser::Feed(std::string_view bytes) {
  if (!error_.ok()) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    consumed_ += pos_;
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (size_t{64} << 10) && pos_ > buf_.size() / 2) {
    consumed_ += pos_;
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

absl::StatusOr<bool> RespParser::Next(Reply* reply) {
  if (!error_.ok()) return error_;
  if (buffered() == 0 || buffered() < need_) return false;
  size_t pos = pos_;
  Reply out;
  need_ = 0;
  switch (Parse(&pos, 0, &out)) {
    case Result::kDone:
      pos_ = pos;
      *reply = std::move(out);
      return true;
    case Result::kNeedMore:
      return false;
    case Result::kError:
      break;
  }
  return error_;
}

RespParser::Result RespParser::Fail(size_t at, std::string_view what) {
  error_ = absl::InvalidArgumentError(
      absl::StrCat("RESP protocol error at byte ", consumed_ + at, ": ",
                   absl::string_view(what.data(), what.size())));
  return Result::kError;
}

RespParser::Result RespParser::Line(size_t* pos, std::string_view* line) {
  const size_t start = *pos;
  const size_t limit =
      std::min(buf_.size(), start + limits_.max_line_bytes + 2);
  const size_t cr = buf_.find('\r', start);
  if (cr == std::string::npos || cr + 1 >= limit) {
    if (buf_.size() - start > limits_.max_line_bytes + 1) {
      return Fail(start, absl::StrCat("line longer than ",
                                      limits_.max_line_bytes, " bytes"));
    }
    return Result::kNeedMore;
  }
  if (buf_[cr + 1] != '\n') return Fail(cr, "CR not followed by LF");
  *line = std::string_view(buf_).substr(start, cr - start);
  if (line->find('\n') != std::string_view::npos) {
    return Fail(start, "LF inside a line");
  }
  *pos = cr + 2;
  return Result::kDone;
}

RespParser::Result RespParser::Integer(size_t* pos, int64_t* value) {
  const size_t start = *pos;
  std::string_view line;
  const Result r = Line(pos, &line);
  if (r != Result::kDone) return r;
  bool negative = false;
  if (!line.empty() && line[0] == '-') {
    negative = true;
    line.remove_prefix(1);
  }
  if (line.empty() || line.size() > 19) {
    return Fail(start, "bad integer");
  }
  uint64_t v = 0;
  for (char c : line) {
    if (c < '0' || c > '9') return Fail(start, "bad integer");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  const uint64_t max = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (v > max) return Fail(start, "integer out of range");
  *value = negative ? static_cast<int64_t>(~v + 1) : static_cast<int64_t>(v);
  return Result::kDone;
}

RespParser::Result RespParser::Parse(size_t* pos, int depth, Reply* out) {
  if (*pos >= buf_.size()) return Result::kNeedMore;
  const size_t start = *pos;
  const char type = buf_[start];
  ++*pos;
  switch (type) {
    case '+':
    case '-': {
      std::string_view line;
      const Result r = Line(pos, &line);
      if (r != Result::kDone) return r;
      out->type = type == '+' ? Reply::Type::kStatus : Reply::Type::kError;
      out->str.assign(line.data(), line.size());
      return Result::kDone;
    }
    case ':': {
      const Result r = Integer(pos, &out->integer);
      if (r != Result::kDone) return r;
      out->type = Reply::Type::kInteger;
      return Result::kDone;
    }
    case '$': {
      int64_t len = 0;
      const Result r = Integer(pos, &len);
      if (r != Result::kDone) return r;
      if (len == -1) {
        out->type = Reply::Type::kNil;
        return Result::kDone;
      }
      if (len < 0) return Fail(start, "negative bulk length");
      if (len > limits_.max_bulk_bytes) {
        return Fail(start, absl::StrCat("bulk length ", len, " exceeds ",
                                        limits_.max_bulk_bytes));
      }
      const size_t n = static_cast<size_t>(len);
      if (buf_.size() - *pos < n + 2) {
        need_ = *pos + n + 2 - pos_;
        return Result::kNeedMore;
      }
      if (buf_[*pos + n] != '\r' || buf_[*pos + n + 1] != '\n') {
        return Fail(*pos + n, "bulk string not followed by CRLF");
      }
      out->type = Reply::Type::kString;
      out->str.assign(buf_, *pos, n);
      *pos += n + 2;
      return Result::kDone;
    }
    case '*': {
      int64_t count = 0;
      const Result r = Integer(pos, &count);
      if (r != Result::kDone) return r;
      if (count == -1) {
        out->type = Reply::Type::kNil;
        return Result::kDone;
      }
      if (count < 0) return Fail(start, "negative array length");
      if (count > limits_.max_array_elements) {
        return Fail(start, absl::StrCat("array length ", count, " exceeds ",
                                        limits_.max_array_elements));
      }
      if (count > 0 && depth + 1 > limits_.max_depth) {
        return Fail(start, absl::StrCat("arrays nested deeper than ",
                                        limits_.max_depth));
      }
      out->type = Reply::Type::kArray;
      // Every element takes at least 3 bytes: never reserve more than the
      // bytes at hand could hold.
      out->elements.reserve(
          std::min(static_cast<size_t>(count), (buf_.size() - *pos) / 3 + 1));
      for (int64_t i = 0; i < count; ++i) {
        Reply element;
        const Result e = Parse(pos, depth + 1, &element);
        if (e != Result::kDone) return e;
        out->elements.push_back(std::move(element));
      }
      return Result::kDone;
    }
    default:
      return Fail(start,
                  absl::StrCat("unexpected type byte 0x",
                               absl::Hex(static_cast<unsigned char>(type),
                                         absl::kZeroPad2),
                               " (RESP2 replies start with + - : $ *)"));
  }
}

}  // namespace plangate::internal::redis
