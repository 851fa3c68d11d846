#include "api/auth.h"

#include <gtest/gtest.h>

#include <vector>

namespace tp {
namespace {

TEST(AuthTest, AcceptsExactlyTheConfiguredBearerTokens) {
  const std::vector<std::string> tokens = {"tok-0123456789abcdef", "tok-fedcba9876543210"};
  EXPECT_TRUE(BearerAuthorized("Bearer tok-0123456789abcdef", tokens));
  EXPECT_TRUE(BearerAuthorized("bearer tok-fedcba9876543210", tokens));  // scheme: any case
  EXPECT_TRUE(BearerAuthorized("BEARER  tok-fedcba9876543210 ", tokens));
  EXPECT_FALSE(BearerAuthorized("", tokens));
  EXPECT_FALSE(BearerAuthorized("Bearer ", tokens));
  EXPECT_FALSE(BearerAuthorized("Bearer tok-0123456789abcde", tokens));    // a prefix
  EXPECT_FALSE(BearerAuthorized("Bearer tok-0123456789abcdefX", tokens));  // longer
  EXPECT_FALSE(BearerAuthorized("Basic tok-0123456789abcdef", tokens));
  EXPECT_FALSE(BearerAuthorized("tok-0123456789abcdef", tokens));
  EXPECT_FALSE(BearerAuthorized("Bearer tok-0123456789abcdef", {}));
}

}  // namespace
}  // namespace tp
