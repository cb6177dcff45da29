// Status, Result<T> and the RETURN_IF_ERROR / ASSIGN_OR_RETURN macros.
#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cairn {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  struct Case {
    Status status;
    StatusCode code;
    const char* name;
  };
  std::vector<Case> cases;
  cases.push_back({Status::NotFound("m"), StatusCode::kNotFound, "NotFound"});
  cases.push_back({Status::Corruption("m"), StatusCode::kCorruption, "Corruption"});
  cases.push_back({Status::DataLoss("m"), StatusCode::kDataLoss, "DataLoss"});
  cases.push_back({Status::IOError("m"), StatusCode::kIOError, "IOError"});
  cases.push_back({Status::InvalidArgument("m"), StatusCode::kInvalidArgument, "InvalidArgument"});
  cases.push_back({Status::Unavailable("m"), StatusCode::kUnavailable, "Unavailable"});
  cases.push_back({Status::AlreadyExists("m"), StatusCode::kAlreadyExists, "AlreadyExists"});
  cases.push_back({Status::NoSpace("m"), StatusCode::kNoSpace, "NoSpace"});
  cases.push_back(
      {Status::FailedPrecondition("m"), StatusCode::kFailedPrecondition, "FailedPrecondition"});
  cases.push_back({Status::VersionMismatch("m"), StatusCode::kVersionMismatch, "VersionMismatch"});
  cases.push_back({Status::TooLarge("m"), StatusCode::kTooLarge, "TooLarge"});
  cases.push_back({Status::NotEmpty("m"), StatusCode::kNotEmpty, "NotEmpty"});
  cases.push_back({Status::LimitExceeded("m"), StatusCode::kLimitExceeded, "LimitExceeded"});
  cases.push_back({Status::Internal("m"), StatusCode::kInternal, "Internal"});
  cases.push_back({Status(StatusCode::kTimeout, "m"), StatusCode::kTimeout, "Timeout"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(c.status.message(), "m");
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
    EXPECT_EQ(StatusCodeName(c.code), c.name);
  }
}

TEST(StatusTest, EveryCodeHasADistinctName) {
  std::set<std::string> names;
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    std::string name(StatusCodeName(static_cast<StatusCode>(c)));
    EXPECT_NE(name, "Unknown") << c;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
}

TEST(StatusTest, CopyAndAssignKeepCodeAndMessage) {
  Status a = Status::Corruption("bad block 7");
  Status b = a;
  EXPECT_EQ(b.code(), StatusCode::kCorruption);
  EXPECT_EQ(b.message(), "bad block 7");
  EXPECT_EQ(a.message(), "bad block 7");  // the source is untouched

  Status c;
  c = a;
  EXPECT_EQ(c.ToString(), "Corruption: bad block 7");
  c = Status::Ok();
  EXPECT_TRUE(c.ok());
  EXPECT_FALSE(a.ok());

  Status& self = a;
  a = self;  // self-assignment keeps the value
  EXPECT_EQ(a.ToString(), "Corruption: bad block 7");

  Status moved = std::move(b);
  EXPECT_EQ(moved.ToString(), "Corruption: bad block 7");

  // Copies are independent.
  Status d = a.WithContext("x");
  EXPECT_EQ(a.message(), "bad block 7");
  EXPECT_EQ(d.message(), "x: bad block 7");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Status::IOError("disk full").WithContext("write seg-1").WithContext("disk 2");
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_EQ(s.message(), "disk 2: write seg-1: disk full");
  EXPECT_TRUE(Status::Ok().WithContext("anything").ok());
}

TEST(StatusTest, FromErrnoMapsCodesAndKeepsContext) {
  struct Case {
    int err;
    StatusCode code;
  };
  const Case cases[] = {
      {ENOENT, StatusCode::kNotFound},         {EEXIST, StatusCode::kAlreadyExists},
      {EACCES, StatusCode::kPermissionDenied}, {EPERM, StatusCode::kPermissionDenied},
      {ENOSPC, StatusCode::kNoSpace},          {EDQUOT, StatusCode::kNoSpace},
      {EINVAL, StatusCode::kInvalidArgument},  {ENAMETOOLONG, StatusCode::kInvalidArgument},
      {ENOTDIR, StatusCode::kInvalidArgument}, {EIO, StatusCode::kIOError},
      {EBADF, StatusCode::kIOError},
  };
  for (const Case& c : cases) {
    Status s = Status::FromErrno(c.err, "open /x/y");
    SCOPED_TRACE(s.ToString());
    EXPECT_EQ(s.code(), c.code);
    EXPECT_NE(s.message().find("open /x/y"), std::string::npos);
    EXPECT_NE(s.message().find(std::strerror(c.err)), std::string::npos);
  }
}

TEST(StatusDeathTest, OkCodeWithMessageAborts) {
  EXPECT_DEATH({ Status s(StatusCode::kOk, "not allowed"); }, "");
}

TEST(ResultTest, HoldsValue) {
  Result<int> r(42);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  *r = 7;
  EXPECT_EQ(r.value(), 7);
}

TEST(ResultTest, HoldsError) {
  Result<int> r(Status::NotFound("no such key"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no such key");
}

TEST(ResultTest, MoveOnlyValueAndArrow) {
  Result<std::unique_ptr<std::string>> r(std::make_unique<std::string>("abc"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->size(), 3u);
  std::unique_ptr<std::string> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, "abc");

  Result<std::string> s(std::string("hello"));
  EXPECT_EQ(s->size(), 5u);
  const Result<std::string>& cs = s;
  EXPECT_EQ(cs.value(), "hello");
  EXPECT_EQ(*cs, "hello");
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r(Status::IOError("boom"));
  EXPECT_DEATH({ (void)r.value(); }, "boom");
}

TEST(ResultDeathTest, BuildingFromOkStatusAborts) {
  EXPECT_DEATH({ Result<int> r(Status::Ok()); }, "");
}

// ---- macros ----

int g_evaluations = 0;

Status Counted(Status s) {
  ++g_evaluations;
  return s;
}

Status TwoSteps(Status first, Status second, int* reached) {
  *reached = 0;
  RETURN_IF_ERROR(Counted(std::move(first)));
  *reached = 1;
  RETURN_IF_ERROR(Counted(std::move(second)));
  *reached = 2;
  return Status::Ok();
}

TEST(MacroTest, ReturnIfErrorReturnsFirstErrorAndEvaluatesOnce) {
  int reached = -1;
  g_evaluations = 0;
  EXPECT_TRUE(TwoSteps(Status::Ok(), Status::Ok(), &reached).ok());
  EXPECT_EQ(reached, 2);
  EXPECT_EQ(g_evaluations, 2);

  g_evaluations = 0;
  Status s = TwoSteps(Status::NotFound("a"), Status::IOError("b"), &reached);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "a");
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(g_evaluations, 1);

  g_evaluations = 0;
  s = TwoSteps(Status::Ok(), Status::IOError("b"), &reached);
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(g_evaluations, 2);
}

Status ReturnIfErrorInIfElse(bool fail) {
  // The macro must behave as one statement (no dangling else).
  if (fail)
    RETURN_IF_ERROR(Status::Unavailable("down"));
  else
    return Status::AlreadyExists("took the else branch");
  return Status::Ok();
}

TEST(MacroTest, ReturnIfErrorIsOneStatement) {
  EXPECT_EQ(ReturnIfErrorInIfElse(true).code(), StatusCode::kUnavailable);
  EXPECT_EQ(ReturnIfErrorInIfElse(false).code(), StatusCode::kAlreadyExists);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x, int* steps) {
  *steps = 0;
  ASSIGN_OR_RETURN(int h, Half(x));
  *steps = 1;
  ASSIGN_OR_RETURN(int q, Half(h));  // a second use in the same scope
  *steps = 2;
  return q;
}

TEST(MacroTest, AssignOrReturnBindsOrPropagates) {
  int steps = -1;
  Result<int> r = Quarter(12, &steps);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
  EXPECT_EQ(steps, 2);

  r = Quarter(6, &steps);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_EQ(steps, 1);

  r = Quarter(5, &steps);
  EXPECT_EQ(r.status().message(), "odd: 5");
  EXPECT_EQ(steps, 0);
}

Result<std::unique_ptr<int>> MakeBox(bool ok) {
  if (!ok) return Status::NoSpace("full");
  return std::make_unique<int>(9);
}

Status UseBox(bool ok, int* out) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> box, MakeBox(ok));
  *out = *box;
  return Status::Ok();
}

TEST(MacroTest, AssignOrReturnMovesMoveOnlyValuesAndConvertsToStatus) {
  int out = 0;
  EXPECT_TRUE(UseBox(true, &out).ok());
  EXPECT_EQ(out, 9);
  out = 0;
  Status s = UseBox(false, &out);
  EXPECT_EQ(s.code(), StatusCode::kNoSpace);
  EXPECT_EQ(out, 0);
}

Status AssignToExisting(int x, int* out) {
  int value = -1;
  ASSIGN_OR_RETURN(value, Half(x));
  *out = value;
  return Status::Ok();
}

TEST(MacroTest, AssignOrReturnToExistingVariable) {
  int out = 0;
  EXPECT_TRUE(AssignToExisting(10, &out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_FALSE(AssignToExisting(3, &out).ok());
  EXPECT_EQ(out, 5);
}

}  // namespace
}  // namespace cairn
