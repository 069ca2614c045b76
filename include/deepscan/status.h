// deepscan/status.h: the error type of the whole library.
//
// Every fallible function returns a Status or a Result<T>. An OK status costs one pointer-sized
// member and no allocation. Each Code maps to exactly one documented CLI exit code
// (ExitCodeFor) and, later, one HTTP status; docs/exit-codes.md is the table users read.
#ifndef DEEPSCAN_STATUS_H_
#define DEEPSCAN_STATUS_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace deepscan {

enum class Code : int {
  kOk = 0,
  kInvalidArgument,  // a bad option or argument value
  kNotFound,         // input path does not exist
  kNotAVideo,        // the file opens but holds no video stream, or is a still image
  kCorruptInput,     // zero bytes, unknown container, undecodable or truncated beyond use
  kTooLarge,         // resolution or size beyond the configured limits
  kTimeout,          // a per-video time budget ran out
  kInvalidModel,     // unreadable model, bad metadata, wrong input shape
  kNotSupported,     // a backend or feature absent from this build/machine
  kIoError,          // reading or writing a file failed
  kUnavailable,      // a peer, server or storage cannot be reached, or went away (e.g. a training rank)
  kInternal,         // a bug: an invariant broke
};

// Returns a stable lowercase name for `code`, e.g. "corrupt_input" (used in JSON output).
std::string_view CodeName(Code code);

// Returns the CLI exit code for a failure of kind `code` (docs/exit-codes.md).
int ExitCodeFor(Code code);

class Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status NotAVideo(std::string m) { return {Code::kNotAVideo, std::move(m)}; }
  static Status CorruptInput(std::string m) { return {Code::kCorruptInput, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status InvalidModel(std::string m) { return {Code::kInvalidModel, std::move(m)}; }
  static Status NotSupported(std::string m) { return {Code::kNotSupported, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The human-readable message; empty when OK.
  const std::string& message() const;
  // "corrupt_input: <message>", or "ok".
  std::string ToString() const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;  // null when OK; shared so copies are cheap
};

// A value or the Status explaining why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design
  bool ok() const { return std::holds_alternative<T>(v_); }
  // Precondition for value(): ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  // OK status when ok(), else the error.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace deepscan

#define DEEPSCAN_CONCAT_INNER(a, b) a##b
#define DEEPSCAN_CONCAT(a, b) DEEPSCAN_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)        \
  do {                               \
    ::deepscan::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)

// `lhs = value of Result expr`, or return its Status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr)                                                             \
  auto DEEPSCAN_CONCAT(_res_, __LINE__) = (expr);                                               \
  if (!DEEPSCAN_CONCAT(_res_, __LINE__).ok()) return DEEPSCAN_CONCAT(_res_, __LINE__).status(); \
  lhs = std::move(DEEPSCAN_CONCAT(_res_, __LINE__)).value()  // NOLINT(bugprone-macro-parentheses): lhs may declare

#endif  // DEEPSCAN_STATUS_H_
