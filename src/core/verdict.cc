#include "deepscan/verdict.h"

namespace deepscan {

std::string_view StatusName(VideoStatus s) {
  switch (s) {
    case VideoStatus::kOk: return "ok";
    case VideoStatus::kNoFace: return "no_face";
    case VideoStatus::kError: return "error";
  }
  return "error";
}

}  // namespace deepscan
