// kiln tokenize / detokenize / chat / generate --prompt --chat, end to end
// through the binary, against HuggingFace's outputs: the tokenizer fixtures'
// cases.json and the demo model's PyTorch reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

std::string tokenizer_fixture(const std::string& name) { return std::string(KILN_FIXTURES) + "/tokenizers/" + name; }

std::string ids_text(const nlohmann::json& ids) {
  std::string s;
  for (const auto& id : ids) s += (s.empty() ? "" : ",") + std::to_string(id.get<int>());
  return s;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(TextCommands, TokenizeMatchesHuggingFace) {
  for (const char* name : {"llama2", "llama3", "qwen3", "gpt2"}) {
    const auto cases = read_json(tokenizer_fixture(name) + "/cases.json");
    TempDir dir;
    int checked = 0;
    for (const auto& c : cases["encode"]) {
      // Through a file, so any byte (newlines, tabs) reaches the tokenizer unchanged.
      const auto file = dir.path() / "text.txt";
      std::ofstream(file, std::ios::binary) << c["text"].get<std::string>();
      const auto r = run_kiln("tokenize --tokenizer " + tokenizer_fixture(name) + " --file " + file.string() +
                              (c["add_special_tokens"].get<bool>() ? " --add-special-tokens" : "") + " --json");
      ASSERT_EQ(r.status, 0) << r.output;
      const auto out = nlohmann::json::parse(r.output);
      EXPECT_EQ(out["ids"], c["ids"]) << name << ": " << c["text"];
      EXPECT_EQ(out["tokens"], c["tokens"]) << name << ": " << c["text"];
      if (++checked == 12) break;  // the tokenizer tests cover every case; here the CLI path
    }
  }
}

TEST(TextCommands, DetokenizeMatchesHuggingFace) {
  const auto cases = read_json(tokenizer_fixture("llama3") + "/cases.json");
  int checked = 0;
  for (const auto& c : cases["decode"]) {
    if (++checked > 12) break;  // the tokenizer tests cover every case; here the CLI path
    const auto r = run_kiln("detokenize --tokenizer " + tokenizer_fixture("llama3") + " --ids '" + ids_text(c["ids"]) +
                            "'" + (c["skip_special_tokens"].get<bool>() ? " --skip-special-tokens" : ""));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, c["text"].get<std::string>() + "\n");
  }
}

TEST(TextCommands, ChatMatchesTransformers) {
  for (const char* name : {"llama3", "qwen3", "llama2"}) {
    const auto cases = read_json(tokenizer_fixture(name) + "/cases.json");
    TempDir dir;
    for (const auto& c : cases["chat"]) {
      if (!c["rendered"].is_string()) continue;  // error cases are the template tests' business
      const auto file = dir.path() / "messages.json";
      write_text(file, c["messages"].dump());
      const auto r = run_kiln("chat --tokenizer " + tokenizer_fixture(name) + " --messages " + file.string() +
                              (c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : ""));
      ASSERT_EQ(r.status, 0) << r.output;
      EXPECT_EQ(r.output, c["rendered"].get<std::string>()) << name;
    }
  }
}

TEST(TextCommands, TokenizerErrorsNameTheProblem) {
  TempDir dir;
  auto r = run_kiln("tokenize --tokenizer " + dir.path().string() + " --text hi");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr(dir.path().string()));
  r = run_kiln("tokenize --tokenizer " + tokenizer_fixture("gpt2"));
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("--text"));
}

class DemoModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = run_kiln("build -q --model " + demo_model() + " --output " + engine().string());
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path engine() { return dir_->path() / "demo"; }
  static TempDir* dir_;
};
TempDir* DemoModel::dir_ = nullptr;

TEST_F(DemoModel, VerifiesAgainstItsTrainingTimeReference) {
  const auto r = run_kiln("verify --engine " + engine().string() + " --reference " + demo_model());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PASS: 4 cases"));
}

// The PyTorch reference's greedy continuation, as text, up to the first end-of-sequence token.
std::string reference_text(const nlohmann::json& c) {
  std::string text = c["generated_text"].get<std::string>();
  for (const char* eos : {"<|im_end|>", "<|endoftext|>"}) text = text.substr(0, text.find(eos));
  return text;
}

TEST_F(DemoModel, GeneratePromptPrintsTheReferenceContinuation) {
  const auto ref = read_json(demo_model() + "/reference.json");
  for (std::size_t i : {0u, 1u}) {
    const auto& c = ref["cases"][i];
    const auto r = run_kiln("generate -q --engine " + engine().string() + " --max-new-tokens 24 --prompt " +
                            shell_quote(c["prompt_text"].get<std::string>()));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, reference_text(c) + "\n");
  }
}

TEST_F(DemoModel, ChatAnswersWithTheReferenceFortune) {
  const auto ref = read_json(demo_model() + "/reference.json");
  const auto& c = ref["cases"][3];  // rendered "Tell me a fortune." conversation
  TempDir dir;
  write_text(dir.path() / "chat.json", R"([{"role": "user", "content": "Tell me a fortune."}])");
  const auto r = run_kiln("generate -q --engine " + engine().string() + " --max-new-tokens 24 --chat " +
                          (dir.path() / "chat.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, reference_text(c) + "\n");
  // And the rendered prompt is the one the reference was computed from.
  const auto chat = run_kiln("chat --engine " + engine().string() + " --add-generation-prompt --messages " +
                             (dir.path() / "chat.json").string());
  EXPECT_EQ(chat.output, c["prompt_text"].get<std::string>());
}

TEST_F(DemoModel, JsonOutputCarriesTextAndIds) {
  const auto r = run_kiln("generate --engine " + engine().string() + " --json --max-new-tokens 8 --prompt 'Love is'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto last = r.output.find_last_of('\n', r.output.size() - 2);
  const auto out = nlohmann::json::parse(r.output.substr(last == std::string::npos ? 0 : last + 1));
  const auto detok = run_kiln("detokenize --engine " + engine().string() + " --skip-special-tokens --ids " +
                              ids_text(out["output_ids"]));
  EXPECT_EQ(detok.output, out["text"].get<std::string>() + "\n");
}

}  // namespace
}  // namespace kiln::test
