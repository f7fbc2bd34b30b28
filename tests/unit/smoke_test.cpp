#include <gtest/gtest.h>
#include "litelens/model.h"
#include "model_builder.h"
TEST(smoke_test, opens_conv_model) {
  auto bytes = litelens::testing::conv_model().finish();
  auto m = litelens::Model::from_bytes(bytes);
  EXPECT_EQ(m.subgraph_count(), 1u);
}
