// serving.properties parsing (the Java-properties subset LMI files use) and
// ServingOptions: LMI files as the docs show them, OPTION_* variables winning,
// defaults, every refusal naming key, origin, value and what is allowed.
#include "serving/serving_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "serving/properties_file.h"
#include "support/error_of.h"

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kiln-serving-options-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  // Writes <dir>/serving.properties and returns its path.
  fs::path write_properties(const std::string& text) const {
    fs::path file = path_ / "serving.properties";
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  fs::path path_;
};

// The message of the kiln::Error that `f` throws, or "" (and a failure) when it throws none.
using test::error_of;

std::vector<std::pair<std::string, std::string>> key_values(const std::vector<Property>& properties) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Property& p : properties) out.emplace_back(p.key, p.value);
  return out;
}

using KV = std::pair<std::string, std::string>;

// ---- properties files ----

TEST(PropertiesFile, ReadsAnLmiFile) {
  std::vector<Property> p = parse_properties(
      "engine=MPI\n"
      "option.model_id=s3://my-bucket/llama-2-7b/\n"
      "option.tensor_parallel_degree=4\n",
      "test");
  EXPECT_THAT(key_values(p), ElementsAre(KV{"engine", "MPI"}, KV{"option.model_id", "s3://my-bucket/llama-2-7b/"},
                                         KV{"option.tensor_parallel_degree", "4"}));
  EXPECT_EQ(p[2].line, 3);
}

TEST(PropertiesFile, SkipsCommentsAndBlankLinesAndCountsLines) {
  std::vector<Property> p = parse_properties(
      "# a comment\n"
      "\n"
      "   ! another comment\n"
      "\t  \n"
      "  a=1\n"
      "#b=2\n"
      "c=3 # not a comment: Java keeps it in the value\n",
      "test");
  EXPECT_THAT(key_values(p), ElementsAre(KV{"a", "1"}, KV{"c", "3 # not a comment: Java keeps it in the value"}));
  EXPECT_EQ(p[0].line, 5);
  EXPECT_EQ(p[1].line, 7);
}

TEST(PropertiesFile, TrimsBlanksAroundTheSeparator) {
  std::vector<Property> p = parse_properties(
      "a = 1\n"
      "b:2\n"
      "c 3\n"
      "\td \t=\t s3://bucket/x=y:z \t \n"
      "e\n"
      "f=\n"
      "g==h\n"
      "i : : j\n",
      "test");
  EXPECT_THAT(key_values(p), ElementsAre(KV{"a", "1"}, KV{"b", "2"}, KV{"c", "3"}, KV{"d", "s3://bucket/x=y:z"},
                                         KV{"e", ""}, KV{"f", ""}, KV{"g", "=h"}, KV{"i", ": j"}));
}

TEST(PropertiesFile, JoinsContinuationLines) {
  std::vector<Property> p = parse_properties(
      "option.model_id=s3://my-bucket/\\\n"
      "     llama-2-7b/\n"
      "two=a\\\n"
      "  b\\\n"
      "\tc\n"
      "even=x\\\\\n"
      "# a comment ends in a backslash \\\n"
      "after=comment\n"
      "last=end\\",
      "test");
  EXPECT_THAT(key_values(p), ElementsAre(KV{"option.model_id", "s3://my-bucket/llama-2-7b/"}, KV{"two", "abc"},
                                         KV{"even", "x\\"}, KV{"after", "comment"}, KV{"last", "end"}));
  EXPECT_EQ(p[0].line, 1);
  EXPECT_EQ(p[1].line, 3);
  EXPECT_EQ(p[2].line, 6);
  EXPECT_EQ(p[3].line, 8);
}

TEST(PropertiesFile, ResolvesEscapes) {
  std::vector<Property> p = parse_properties(
      "a\\=b=c\n"
      "key\\ with\\ blanks = v\n"
      "tab=x\\ty\n"
      "unicode=caf\\u00e9 \\u20AC\n"
      "kept=trailing\\ \n"
      "other=\\q\\#\n",
      "test");
  EXPECT_THAT(key_values(p),
              ElementsAre(KV{"a=b", "c"}, KV{"key with blanks", "v"}, KV{"tab", "x\ty"},
                          KV{"unicode", "caf\xC3\xA9 \xE2\x82\xAC"}, KV{"kept", "trailing "}, KV{"other", "q#"}));
}

TEST(PropertiesFile, RefusesAMalformedUnicodeEscapeNamingTheLine) {
  EXPECT_EQ(error_of([] { parse_properties("a=1\nb=\\u12G4\n", "/x/serving.properties"); }),
            "/x/serving.properties:2: malformed \\uXXXX escape (four hex digits expected)");
  EXPECT_THAT(error_of([] { parse_properties("b=\\u12", "f"); }), StartsWith("f:1: malformed"));
}

TEST(PropertiesFile, AcceptsWindowsAndOldMacLineEndsAndAByteOrderMark) {
  std::vector<Property> p = parse_properties(
      "\xEF\xBB\xBF"
      "a=1\r\nb=2\rc=3\\\r\n  4\r\n",
      "test");
  EXPECT_THAT(key_values(p), ElementsAre(KV{"a", "1"}, KV{"b", "2"}, KV{"c", "34"}));
  EXPECT_EQ(p[1].line, 2);
}

TEST(PropertiesFile, ReadsAFileAndRefusesWhatCannotBeRead) {
  TempDir dir;
  fs::path file = dir.write_properties("option.dtype = bf16\n");
  EXPECT_THAT(key_values(read_properties_file(file)), ElementsAre(KV{"option.dtype", "bf16"}));
  EXPECT_THAT(
      error_of([&] { read_properties_file(dir.path() / "absent.properties"); }),
      AllOf(StartsWith("cannot read " + (dir.path() / "absent.properties").string()), HasSubstr("No such file")));
  EXPECT_EQ(error_of([&] { read_properties_file(dir.path()); }),
            "cannot read " + dir.path().string() + ": it is a directory");
}

// ---- serving options ----

TEST(ServingOptions, DefaultsJustWork) {
  ServingOptions o = load_serving_options({}, {{"HOME", "/home/lmi"}});
  EXPECT_EQ(o.model_id, "");
  EXPECT_EQ(o.tensor_parallel_degree, 1);
  EXPECT_FALSE(o.tensor_parallel_all_devices);
  EXPECT_EQ(o.tensor_parallel_for(4), 1);
  EXPECT_FALSE(o.dtype.has_value());
  EXPECT_EQ(o.target, "auto");
  EXPECT_EQ(o.rolling_batch, "auto");
  EXPECT_TRUE(o.continuous_batching());
  EXPECT_EQ(o.max_rolling_batch_size, 32);
  EXPECT_FALSE(o.max_input_len.has_value());
  EXPECT_FALSE(o.max_output_len.has_value());
  EXPECT_FALSE(o.max_num_tokens.has_value());
  EXPECT_EQ(o.max_new_tokens, 256);
  EXPECT_EQ(o.max_queue_size, 1024);
  EXPECT_DOUBLE_EQ(o.gpu_memory_utilization, 0.9);
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.cache_dir, fs::path("/home/lmi/.cache/kiln"));
  EXPECT_THAT(o.sources, IsEmpty());
  EXPECT_THAT(o.notes, IsEmpty());
  EXPECT_THAT(o.warnings, IsEmpty());
  EXPECT_EQ(o.source_of("model_id"), nullptr);
}

TEST(ServingOptions, CacheDirFallsBackToTmpWithoutHome) {
  EXPECT_EQ(load_serving_options({}, {}).cache_dir, fs::path("/tmp/kiln-cache"));
  EXPECT_EQ(load_serving_options({}, {{"HOME", ""}}).cache_dir, fs::path("/tmp/kiln-cache"));
}

TEST(ServingOptions, ReadsTheLmiDocsExample) {
  TempDir dir;
  fs::path file = dir.write_properties(
      "engine=MPI\n"
      "option.model_id=s3://my-bucket/llama-2-7b/\n"
      "option.tensor_parallel_degree=4\n"
      "option.max_rolling_batch_size=64\n"
      "option.dtype=fp16\n"
      "option.rolling_batch=trtllm\n");
  ServingOptions o = load_serving_options(dir.path(), {});
  EXPECT_EQ(o.model_id, "s3://my-bucket/llama-2-7b/");
  EXPECT_EQ(o.tensor_parallel_degree, 4);
  EXPECT_EQ(o.max_rolling_batch_size, 64);
  EXPECT_EQ(o.dtype, DType::f16);
  EXPECT_EQ(o.rolling_batch, "trtllm");
  EXPECT_TRUE(o.continuous_batching());
  EXPECT_THAT(o.warnings, IsEmpty());
  EXPECT_THAT(o.notes, ElementsAre(file.string() + ":1: engine=MPI is ignored: kiln serves with its own engine"));
  ASSERT_NE(o.source_of("model_id"), nullptr);
  EXPECT_EQ(o.source_of("model_id")->origin, file.string() + ":2: option.model_id");
  EXPECT_EQ(o.source_of("model_id")->value, "s3://my-bucket/llama-2-7b/");
  EXPECT_EQ(o.sources.size(), 5u);
}

TEST(ServingOptions, ReadsEveryOption) {
  TempDir dir;
  dir.write_properties(
      "option.model_id = /opt/ml/model/llama\n"
      "option.tensor_parallel_degree: 2\n"
      "option.dtype=bfloat16\n"
      "option.target=CPU\n"
      "option.rolling_batch=disable\n"
      "option.max_rolling_batch_size=16\n"
      "option.max_input_len=1024\n"
      "option.max_output_len=512\n"
      "option.max_num_tokens=8192\n"
      "option.max_new_tokens=64\n"
      "option.max_queue_size=10\n"
      "option.gpu_memory_utilization=0.85\n"
      "option.quantize=none\n"
      "option.host=127.0.0.1\n"
      "option.port=0\n"
      "option.cache_dir=/var/cache/kiln\n");
  ServingOptions o = load_serving_options(dir.path(), {{"HOME", "/home/lmi"}});
  EXPECT_EQ(o.model_id, "/opt/ml/model/llama");
  EXPECT_EQ(o.tensor_parallel_degree, 2);
  EXPECT_EQ(o.tensor_parallel_for(8), 2);
  EXPECT_EQ(o.dtype, DType::bf16);
  EXPECT_EQ(o.target, "cpu");
  EXPECT_EQ(o.rolling_batch, "disable");
  EXPECT_FALSE(o.continuous_batching());
  EXPECT_EQ(o.max_rolling_batch_size, 16);
  EXPECT_EQ(o.max_input_len, 1024);
  EXPECT_EQ(o.max_output_len, 512);
  EXPECT_EQ(o.max_num_tokens, 8192);
  EXPECT_EQ(o.max_new_tokens, 64);
  EXPECT_EQ(o.max_queue_size, 10);
  EXPECT_DOUBLE_EQ(o.gpu_memory_utilization, 0.85);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 0);
  EXPECT_EQ(o.cache_dir, fs::path("/var/cache/kiln"));
  EXPECT_THAT(o.warnings, IsEmpty());
  EXPECT_THAT(o.notes, IsEmpty());
}

TEST(ServingOptions, EnvironmentWinsOverTheFile) {
  TempDir dir;
  fs::path file = dir.write_properties(
      "option.model_id=/models/from-file\n"
      "option.dtype=fp16\n"
      "option.max_rolling_batch_size=64\n");
  ServingOptions o = load_serving_options(
      dir.path(), {{"PATH", "/usr/bin"}, {"OPTION_DTYPE", "bf16"}, {"OPTION_TENSOR_PARALLEL_DEGREE", " 2 "}});
  EXPECT_EQ(o.model_id, "/models/from-file");
  EXPECT_EQ(o.dtype, DType::bf16);
  EXPECT_EQ(o.tensor_parallel_degree, 2);
  EXPECT_EQ(o.max_rolling_batch_size, 64);
  EXPECT_EQ(o.source_of("dtype")->origin, "OPTION_DTYPE");
  EXPECT_EQ(o.source_of("tensor_parallel_degree")->value, "2");
  EXPECT_EQ(o.source_of("max_rolling_batch_size")->origin, file.string() + ":3: option.max_rolling_batch_size");
  EXPECT_THAT(o.notes, ElementsAre("OPTION_DTYPE=bf16 overrides " + file.string() + ":2: option.dtype=fp16"));
}

TEST(ServingOptions, EnvironmentAloneNeedsNoFile) {
  TempDir dir;  // a properties directory without serving.properties, as LMI allows
  ServingOptions o = load_serving_options(dir.path(), {{"OPTION_MODEL_ID", "s3://bucket/engines/llama"},
                                                       {"OPTION_MAX_ROLLING_BATCH_SIZE", "8"},
                                                       {"HF_MODEL_ID", "not/read"},
                                                       {"option_dtype", "fp8"}});  // variables are case-sensitive
  EXPECT_EQ(o.model_id, "s3://bucket/engines/llama");
  EXPECT_EQ(o.max_rolling_batch_size, 8);
  EXPECT_FALSE(o.dtype.has_value());
  EXPECT_THAT(o.warnings, IsEmpty());
}

TEST(ServingOptions, OnlyTheSettingInEffectIsChecked) {
  TempDir dir;
  dir.write_properties("option.dtype=fp8\n");
  EXPECT_EQ(load_serving_options(dir.path(), {{"OPTION_DTYPE", "fp32"}}).dtype, DType::f32);
}

TEST(ServingOptions, AnEmptyValueCountsAsNotGiven) {
  TempDir dir;
  dir.write_properties("option.dtype=fp16\noption.max_input_len=\n");
  ServingOptions o = load_serving_options(dir.path(), {{"OPTION_DTYPE", ""}, {"OPTION_PORT", "  "}});
  EXPECT_EQ(o.dtype, DType::f16);
  EXPECT_FALSE(o.max_input_len.has_value());
  EXPECT_EQ(o.port, 8080);
  EXPECT_THAT(o.notes, IsEmpty());
}

TEST(ServingOptions, TheLastLineOfAFileWins) {
  TempDir dir;
  fs::path file = dir.write_properties("option.port=9000\noption.port=9001\n");
  ServingOptions o = load_serving_options(dir.path(), {});
  EXPECT_EQ(o.port, 9001);
  EXPECT_THAT(o.notes,
              ElementsAre(file.string() + ":2: option.port=9001 overrides " + file.string() + ":1: option.port=9000"));
}

TEST(ServingOptions, TensorParallelMaxMeansAllVisibleDevices) {
  for (const char* written : {"max", "MAX"}) {
    ServingOptions o = load_serving_options({}, {{"OPTION_TENSOR_PARALLEL_DEGREE", written}});
    EXPECT_TRUE(o.tensor_parallel_all_devices);
    EXPECT_EQ(o.tensor_parallel_for(1), 1);  // the CPU target
    EXPECT_EQ(o.tensor_parallel_for(0), 1);
    EXPECT_EQ(o.tensor_parallel_for(8), 8);
  }
}

TEST(ServingOptions, DtypeNamesAndAliases) {
  auto dtype_of = [](const char* written) { return load_serving_options({}, {{"OPTION_DTYPE", written}}).dtype; };
  EXPECT_EQ(dtype_of("fp32"), DType::f32);
  EXPECT_EQ(dtype_of("float32"), DType::f32);
  EXPECT_EQ(dtype_of("FP16"), DType::f16);
  EXPECT_EQ(dtype_of("float16"), DType::f16);
  EXPECT_EQ(dtype_of("bf16"), DType::bf16);
  EXPECT_EQ(dtype_of("bfloat16"), DType::bf16);
  EXPECT_EQ(dtype_of("auto"), std::nullopt);
}

TEST(ServingOptions, EveryRollingBatchButDisableBatchesContinuously) {
  for (const char* written : {"auto", "trtllm", "lmi-dist", "vllm", "scheduler", "TRTLLM"}) {
    EXPECT_TRUE(load_serving_options({}, {{"OPTION_ROLLING_BATCH", written}}).continuous_batching()) << written;
  }
  EXPECT_FALSE(load_serving_options({}, {{"OPTION_ROLLING_BATCH", "disable"}}).continuous_batching());
}

struct InvalidValue {
  const char* variable;
  const char* value;
  const char* rule;  // the message after "<variable>=<value>: "
};

class ServingOptionsRefuses : public ::testing::TestWithParam<InvalidValue> {};

TEST_P(ServingOptionsRefuses, NamingOriginValueAndWhatIsAllowed) {
  const InvalidValue& c = GetParam();
  EXPECT_EQ(error_of([&] {
              load_serving_options({}, {{c.variable, c.value}});
            }),
            std::string(c.variable) + "=" + c.value + ": " + c.rule);
}

INSTANTIATE_TEST_SUITE_P(
    EveryOption, ServingOptionsRefuses,
    ::testing::Values(
        InvalidValue{"OPTION_TENSOR_PARALLEL_DEGREE", "zero",
                     "tensor_parallel_degree must be a positive integer or \"max\""},
        InvalidValue{"OPTION_TENSOR_PARALLEL_DEGREE", "0",
                     "tensor_parallel_degree must be a positive integer or \"max\""},
        InvalidValue{"OPTION_TENSOR_PARALLEL_DEGREE", "1.5",
                     "tensor_parallel_degree must be a positive integer or \"max\""},
        InvalidValue{"OPTION_TENSOR_PARALLEL_DEGREE", "4294967297",
                     "tensor_parallel_degree must be a positive integer or \"max\""},
        InvalidValue{"OPTION_MAX_ROLLING_BATCH_SIZE", "0", "max_rolling_batch_size must be a positive integer"},
        InvalidValue{"OPTION_MAX_ROLLING_BATCH_SIZE", "-3", "max_rolling_batch_size must be a positive integer"},
        InvalidValue{"OPTION_MAX_ROLLING_BATCH_SIZE", "64x", "max_rolling_batch_size must be a positive integer"},
        InvalidValue{"OPTION_DTYPE", "fp8", "dtype must be one of auto, fp32, fp16, bf16, float32, float16, bfloat16"},
        InvalidValue{"OPTION_TARGET", "rocm", "target must be one of auto, cpu, cuda"},
        InvalidValue{"OPTION_ROLLING_BATCH", "deepspeed",
                     "rolling_batch must be one of auto, disable, trtllm, lmi-dist, vllm, scheduler"},
        InvalidValue{"OPTION_MAX_INPUT_LEN", "0", "max_input_len must be a positive integer"},
        InvalidValue{"OPTION_MAX_OUTPUT_LEN", "-5", "max_output_len must be a positive integer"},
        InvalidValue{"OPTION_MAX_NUM_TOKENS", "4k", "max_num_tokens must be a positive integer"},
        InvalidValue{"OPTION_MAX_NEW_TOKENS", "1e3", "max_new_tokens must be a positive integer"},
        InvalidValue{"OPTION_MAX_QUEUE_SIZE", "0", "max_queue_size must be a positive integer"},
        InvalidValue{"OPTION_GPU_MEMORY_UTILIZATION", "0", "gpu_memory_utilization must be a number in (0, 1]"},
        InvalidValue{"OPTION_GPU_MEMORY_UTILIZATION", "1.5", "gpu_memory_utilization must be a number in (0, 1]"},
        InvalidValue{"OPTION_GPU_MEMORY_UTILIZATION", "nan", "gpu_memory_utilization must be a number in (0, 1]"},
        InvalidValue{"OPTION_GPU_MEMORY_UTILIZATION", "90%", "gpu_memory_utilization must be a number in (0, 1]"},
        InvalidValue{"OPTION_PORT", "65536", "port must be an integer from 0 to 65535 (0: any free port)"},
        InvalidValue{"OPTION_PORT", "http", "port must be an integer from 0 to 65535 (0: any free port)"},
        InvalidValue{"OPTION_MODEL_ID", "gs://bucket/llama",
                     "model_id must be a local directory or an s3://bucket/prefix URL"},
        InvalidValue{"OPTION_MODEL_ID", "s3:///llama",
                     "model_id must be a local directory or an s3://bucket/prefix URL"},
        InvalidValue{"OPTION_MODEL_ID", "s3://", "model_id must be a local directory or an s3://bucket/prefix URL"},
        InvalidValue{"OPTION_QUANTIZE", "awq",
                     "quantize 'awq' is not supported yet; kiln builds fp8 (E4M3 weights, on GPUs from sm_89) or "
                     "unquantized engines (leave quantize unset, or none)"}));

TEST(ServingOptions, RefusesAFileValueNamingFileLineAndKey) {
  TempDir dir;
  fs::path file = dir.write_properties("engine=MPI\n# dtype\noption.dtype = fp8\n");
  EXPECT_EQ(
      error_of([&] { load_serving_options(dir.path(), {}); }),
      file.string() + ":3: option.dtype=fp8: dtype must be one of auto, fp32, fp16, bf16, float32, float16, bfloat16");
}

TEST(ServingOptions, TakesFp8AndRefusesOtherQuantizations) {
  EXPECT_THAT(error_of([] {
                load_serving_options({}, {{"OPTION_QUANTIZE", "gptq"}});
              }),
              HasSubstr("quantize 'gptq' is not supported yet"));
  EXPECT_THAT(load_serving_options({}, {{"OPTION_QUANTIZE", "None"}}).warnings, IsEmpty());
  EXPECT_EQ(load_serving_options({}, {{"OPTION_QUANTIZE", "FP8"}}).quantization, engine::Quantization::fp8);
}

TEST(ServingOptions, WarnsOfUnknownKeysByName) {
  TempDir dir;
  fs::path file = dir.write_properties(
      "option.max_rollin_batch_size=64\n"
      "model_id=/models/llama\n"
      "option.device_map=auto\n");
  ServingOptions o = load_serving_options(dir.path(), {{"OPTION_SPECULATIVE_DRAFT_MODEL", "x"}});
  EXPECT_THAT(
      o.warnings,
      ElementsAre(file.string() + ":1: option.max_rollin_batch_size: unknown option max_rollin_batch_size is ignored; "
                                  "did you mean max_rolling_batch_size?",
                  file.string() + ":2: model_id is ignored: options are written option.model_id",
                  file.string() + ":3: option.device_map: unknown option device_map is ignored",
                  "OPTION_SPECULATIVE_DRAFT_MODEL: unknown option speculative_draft_model is ignored"));
  EXPECT_EQ(o.max_rolling_batch_size, 32);
  EXPECT_EQ(o.model_id, "");
}

TEST(ServingOptions, NotesLmiSettingsKilnDoesNotNeed) {
  TempDir dir;
  fs::path file = dir.write_properties(
      "engine=Python\n"
      "job_queue_size=100\n"
      "option.trust_remote_code=true\n"
      "option.entryPoint=djl_python.huggingface\n");
  ServingOptions o = load_serving_options(dir.path(), {{"OPTION_ENABLE_STREAMING", "true"}});
  EXPECT_THAT(o.warnings, IsEmpty());
  EXPECT_THAT(o.notes,
              ElementsAre(file.string() + ":1: engine=Python is ignored: kiln serves with its own engine",
                          file.string() + ":2: job_queue_size is ignored: kiln reads only option.* keys",
                          file.string() + ":3: option.trust_remote_code=true is ignored: kiln executes no model code",
                          file.string() +
                              ":4: option.entryPoint=djl_python.huggingface is ignored: kiln serves every model with "
                              "its own engine",
                          "OPTION_ENABLE_STREAMING=true is ignored: clients choose streaming per request"));
}

TEST(ServingOptions, PropertiesDirMayNameTheFileItself) {
  TempDir dir;
  fs::path file = dir.write_properties("option.port=9090\n");
  EXPECT_EQ(load_serving_options(file, {}).port, 9090);
}

TEST(ServingOptions, RefusesAMissingPropertiesDir) {
  TempDir dir;
  fs::path missing = dir.path() / "nowhere";
  EXPECT_EQ(error_of([&] { load_serving_options(missing, {}); }),
            "properties directory " + missing.string() + " does not exist");
}

TEST(ServingOptions, RefusesAnUnreadablePropertiesFile) {
  TempDir dir;
  fs::create_directory(dir.path() / "serving.properties");
  EXPECT_THAT(error_of([&] { load_serving_options(dir.path(), {}); }), HasSubstr("it is a directory"));
}

TEST(ServingOptions, ProcessEnvironmentListsThisProcessesVariables) {
  const char* path = std::getenv("PATH");
  ASSERT_NE(path, nullptr);
  Environment environment = process_environment();
  EXPECT_THAT(environment, ::testing::Contains(std::pair<std::string, std::string>("PATH", path)));
}

}  // namespace
}  // namespace kiln::serving
