// Fuzzes tokenizer.json loading (vocabulary, merges, added tokens, normalizer, pre-tokenizer, post-processor,
// decoder) and, when it loads, encoding and decoding a short text. The loader reads a file, so each input is
// written to a file in /dev/shm.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ShmFile file("tokenizer.json");
  const auto& path = file.write(kiln::fuzz::as_text(data, size));
  kiln::fuzz::expect_only_kiln_errors([&] {
    const auto tokenizer = kiln::tokenizer::Tokenizer::load(path);
    const std::string text = "Hello world! 123  x\n\tcafé 日本 <s></s><|endoftext|>\xff";
    const std::vector<std::int32_t> ids = tokenizer->encode(text, true);
    (void)tokenizer->decode(ids, false);
    (void)tokenizer->decode(ids, true);
    std::vector<std::int32_t> first_ids;
    for (std::int32_t id = -1; id < 64; ++id) {
      first_ids.push_back(id);
      (void)tokenizer->id_to_token(id);
      (void)tokenizer->is_special(id);
    }
    (void)tokenizer->decode(first_ids, false);
    kiln::tokenizer::IncrementalDetokenizer detokenizer(*tokenizer, true);
    for (std::int32_t id : ids) (void)detokenizer.push(id);
    (void)detokenizer.finish();
    (void)tokenizer->token_to_id("Hello");
  });
  return 0;
}
