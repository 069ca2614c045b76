#include "deepscan/status.h"

#include <set>

#include <gtest/gtest.h>

namespace deepscan {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  *out = q;
  return Status::Ok();
}

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = Status::CorruptInput("bad moov");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kCorruptInput);
  EXPECT_EQ(s.ToString(), "corrupt_input: bad moov");
  Status copy = s;
  EXPECT_EQ(copy.message(), "bad moov");
}

TEST(StatusTest, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);  // 6 -> 3 -> odd
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

TEST(StatusTest, ExitCodesAreDistinctAndDocumented) {
  std::set<int> seen;
  for (Code c : {Code::kInvalidArgument, Code::kNotFound, Code::kNotAVideo, Code::kCorruptInput, Code::kTooLarge,
                 Code::kTimeout, Code::kInvalidModel, Code::kNotSupported, Code::kIoError, Code::kUnavailable, Code::kInternal}) {
    int e = ExitCodeFor(c);
    EXPECT_NE(e, 0);
    EXPECT_NE(e, 1);  // reserved for crashes
    EXPECT_NE(e, 3);  // reserved for partial batch failure
    EXPECT_TRUE(seen.insert(e).second) << CodeName(c);
  }
  EXPECT_EQ(ExitCodeFor(Code::kOk), 0);
  EXPECT_EQ(ExitCodeFor(Code::kNotFound), 10);
  EXPECT_EQ(ExitCodeFor(Code::kInvalidModel), 20);
  EXPECT_EQ(ExitCodeFor(Code::kUnavailable), 23);
}

}  // namespace
}  // namespace deepscan
