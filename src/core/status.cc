#include "deepscan/status.h"

namespace deepscan {

Status::Status(Code code, std::string message)
    : rep_(code == Code::kOk ? nullptr : std::make_shared<const Rep>(Rep{code, std::move(message)})) {}

const std::string& Status::message() const {
  static const std::string empty;
  return rep_ ? rep_->message : empty;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code())) + ": " + message();
}

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kNotAVideo: return "not_a_video";
    case Code::kCorruptInput: return "corrupt_input";
    case Code::kTooLarge: return "too_large";
    case Code::kTimeout: return "timeout";
    case Code::kInvalidModel: return "invalid_model";
    case Code::kNotSupported: return "not_supported";
    case Code::kIoError: return "io_error";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

int ExitCodeFor(Code code) {
  // Keep in sync with docs/exit-codes.md. 1 is left to crashes of the C++ runtime, 2 to usage
  // errors (CLI11), 3 to a batch in which some inputs failed and others did not.
  switch (code) {
    case Code::kOk: return 0;
    case Code::kInvalidArgument: return 2;
    case Code::kNotFound: return 10;
    case Code::kNotAVideo: return 11;
    case Code::kCorruptInput: return 12;
    case Code::kTooLarge: return 13;
    case Code::kTimeout: return 14;
    case Code::kInvalidModel: return 20;
    case Code::kNotSupported: return 21;
    case Code::kIoError: return 22;
    case Code::kUnavailable: return 23;
    case Code::kInternal: return 70;
  }
  return 70;
}

}  // namespace deepscan
