// HuggingFace reference outputs of a fixture (reference.json +
// reference.safetensors, see ../shared/fixtures/make_fixtures.py).
#pragma once

#include <filesystem>
#include <vector>

namespace kiln::cli {

struct ReferenceCase {
  std::vector<int32_t> prompt, generated;
  std::vector<double> greedy_margins;  // top-1 minus top-2 logit at each greedy step
  std::vector<float> logits;           // [prompt + generated, vocab], row t predicts token t + 1
};

struct Reference {
  int64_t vocab_size = 0;
  std::vector<ReferenceCase> cases;
  static Reference load(const std::filesystem::path& dir);
};

}  // namespace kiln::cli
