// The GEMM plan: which products an engine runs (per rank, deduplicated), the m
// buckets they are tuned at, the JSON stored in engine.json's kernel_choices,
// and which stored choice a product of m rows uses.
#include "runtime/gemm_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "support/error_of.h"

namespace kiln::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using test::error_of;

ModelSpec llama2_7b() {
  ModelSpec s;
  s.family = "llama";
  s.vocab_size = 32000;
  s.hidden_size = 4096;
  s.num_layers = 32;
  s.num_heads = 32;
  s.num_kv_heads = 32;
  s.head_dim = 128;
  s.intermediate_size = 11008;
  return s;
}

engine::Limits limits(int64_t max_batch_size, int64_t max_num_tokens) {
  engine::Limits l;
  l.max_batch_size = max_batch_size;
  l.max_num_tokens = max_num_tokens;
  return l;
}

const GemmProblem& problem(const GemmPlan& plan, int64_t n, int64_t k) {
  const GemmProblem* p = plan.find(n, k);
  if (p == nullptr) throw_error("no problem n=", n, " k=", k);
  return *p;
}

TEST(GemmPlan, BucketsArePowersOfTwoUpToTheLargestM) {
  EXPECT_THAT(GemmPlan::buckets(4096), ElementsAre(16, 32, 64, 128, 256, 512, 1024, 2048, 4096));
  EXPECT_THAT(GemmPlan::buckets(3000), ElementsAre(16, 32, 64, 128, 256, 512, 1024, 2048, 3000));
  EXPECT_THAT(GemmPlan::buckets(64), ElementsAre(16, 32, 64));
  EXPECT_THAT(GemmPlan::buckets(17), ElementsAre(16, 17));
  EXPECT_THAT(GemmPlan::buckets(16), ElementsAre(16));
  EXPECT_THAT(GemmPlan::buckets(12), ElementsAre(12));
  EXPECT_TRUE(GemmPlan::buckets(8).empty());  // the gemv runs every product
  EXPECT_TRUE(GemmPlan::buckets(1).empty());
}

TEST(GemmPlan, Llama7bProblems) {
  const GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 4096), DType::f16);
  EXPECT_FALSE(plan.tuned);
  EXPECT_EQ(plan.dtype, DType::f16);
  ASSERT_EQ(plan.problems.size(), 5u);
  const GemmProblem& qkv = problem(plan, 3 * 4096, 4096);
  EXPECT_THAT(qkv.uses, ElementsAre("qkv"));
  EXPECT_EQ(qkv.max_m, 4096);
  EXPECT_FALSE(qkv.accumulate);
  const GemmProblem& out = problem(plan, 4096, 4096);
  EXPECT_THAT(out.uses, ElementsAre("out"));
  EXPECT_TRUE(out.accumulate);
  EXPECT_THAT(problem(plan, 2 * 11008, 4096).uses, ElementsAre("gate_up"));
  const GemmProblem& down = problem(plan, 4096, 11008);
  EXPECT_THAT(down.uses, ElementsAre("down"));
  EXPECT_TRUE(down.accumulate);
  // The LM head runs one row per sequence: up to max_batch_size.
  const GemmProblem& lm_head = problem(plan, 32000, 4096);
  EXPECT_THAT(lm_head.uses, ElementsAre("lm_head"));
  EXPECT_EQ(lm_head.max_m, 64);
  for (const GemmProblem& p : plan.problems) EXPECT_TRUE(p.choices.empty());
}

TEST(GemmPlan, Fp8EnginesRunTheProjectionsInE4m3AndTheLmHeadIn16Bits) {
  const GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 4096), DType::bf16, engine::Quantization::fp8);
  EXPECT_EQ(plan.dtype, DType::bf16);
  ASSERT_EQ(plan.problems.size(), 5u);
  for (const auto& [n, k] :
       {std::pair<int64_t, int64_t>{3 * 4096, 4096}, {4096, 4096}, {2 * 11008, 4096}, {4096, 11008}}) {
    EXPECT_NE(plan.find(n, k, DType::f8e4m3), nullptr) << n << "x" << k;
    EXPECT_EQ(plan.find(n, k), nullptr) << n << "x" << k;  // not a bf16 product
  }
  EXPECT_EQ(problem(plan, 32000, 4096).dtype, DType::bf16);
  EXPECT_EQ(plan.find(32000, 4096, DType::f8e4m3), nullptr);
}

TEST(GemmPlan, OneShapeInTwoDtypesIsTwoProblems) {
  // A vocabulary as wide as the MLP: the LM head (bf16) and gate_up (E4M3) share (n, k).
  ModelSpec s = llama2_7b();
  s.vocab_size = 2 * 11008;
  const GemmPlan fp8 = GemmPlan::for_engine(s, 1, limits(64, 4096), DType::bf16, engine::Quantization::fp8);
  EXPECT_EQ(fp8.problems.size(), 5u);
  EXPECT_THAT(fp8.find(2 * 11008, 4096, DType::f8e4m3)->uses, ElementsAre("gate_up"));
  EXPECT_THAT(fp8.find(2 * 11008, 4096, DType::bf16)->uses, ElementsAre("lm_head"));
  const GemmPlan bf16 = GemmPlan::for_engine(s, 1, limits(64, 4096), DType::bf16);
  EXPECT_EQ(bf16.problems.size(), 4u);
  EXPECT_THAT(bf16.find(2 * 11008, 4096)->uses, ElementsAre("gate_up", "lm_head"));
}

TEST(GemmPlan, ProblemDtypesRoundTripAndOldPlansTakeTheEngines) {
  GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 4096), DType::f16, engine::Quantization::fp8);
  nlohmann::json j = plan.to_json();
  const GemmPlan back = GemmPlan::from_json(j);
  EXPECT_NE(back.find(4096, 11008, DType::f8e4m3), nullptr);
  EXPECT_NE(back.find(32000, 4096, DType::f16), nullptr);
  // A plan written before FP8 engines names no problem's dtype: each is the engine's.
  for (auto& p : j["problems"]) p.erase("dtype");
  const GemmPlan old = GemmPlan::from_json(j);
  for (const GemmProblem& p : old.problems) EXPECT_EQ(p.dtype, DType::f16);
  j["problems"][0]["dtype"] = "fp7";
  EXPECT_THAT(error_of([&] { GemmPlan::from_json(j); }), HasSubstr("unknown dtype 'fp7'"));
}

TEST(GemmPlan, StepRowsAreTheLargerLimit) {
  // max_batch_size above max_num_tokens: decode steps reach it.
  const GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(256, 128), DType::bf16);
  EXPECT_EQ(problem(plan, 3 * 4096, 4096).max_m, 256);
  EXPECT_EQ(problem(plan, 32000, 4096).max_m, 256);
}

TEST(GemmPlan, SmallBatchesLeaveTheLmHeadToTheGemv) {
  const GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(8, 4096), DType::f16);
  EXPECT_EQ(plan.problems.size(), 4u);
  EXPECT_EQ(plan.find(32000, 4096), nullptr);
}

TEST(GemmPlan, TensorParallelShapesArePerRank) {
  ModelSpec s = llama2_7b();  // Llama-3-8B-like GQA: 32 heads, 8 KV heads, ffn 14336
  s.num_kv_heads = 8;
  s.intermediate_size = 14336;
  s.vocab_size = 128256;
  const GemmPlan plan = GemmPlan::for_engine(s, 2, limits(16, 2048), DType::bf16);
  EXPECT_THAT(problem(plan, 16 * 128 + 2 * 4 * 128, 4096).uses, ElementsAre("qkv"));
  EXPECT_THAT(problem(plan, 4096, 16 * 128).uses, ElementsAre("out"));
  EXPECT_THAT(problem(plan, 14336, 4096).uses, ElementsAre("gate_up"));
  EXPECT_THAT(problem(plan, 4096, 7168).uses, ElementsAre("down"));
  EXPECT_THAT(problem(plan, 128256, 4096).uses, ElementsAre("lm_head"));  // replicated
}

TEST(GemmPlan, ReplicatedKvHeads) {
  ModelSpec s = llama2_7b();  // multi-query: one KV head, kept whole on every rank
  s.num_kv_heads = 1;
  const GemmPlan plan = GemmPlan::for_engine(s, 4, limits(8, 512), DType::f16);
  EXPECT_NE(plan.find(8 * 128 + 2 * 128, 4096), nullptr);
}

TEST(GemmPlan, MixtureOfExpertsRunsTheExpertShapes) {
  ModelSpec s = llama2_7b();
  s.num_experts = 8;
  s.experts_per_token = 2;
  s.intermediate_size = 14336;
  const GemmPlan plan = GemmPlan::for_engine(s, 1, limits(8, 4096), DType::bf16);
  EXPECT_THAT(problem(plan, 2 * 14336, 4096).uses, ElementsAre("expert_gate_up"));
  const GemmProblem& down = problem(plan, 4096, 14336);
  EXPECT_THAT(down.uses, ElementsAre("expert_down"));
  EXPECT_EQ(down.max_m, 4096);
  EXPECT_EQ(plan.problems.size(), 4u);  // qkv, out and the experts' two; the router is fp32
}

TEST(GemmPlan, EqualShapesAreOneProblem) {
  ModelSpec s;  // ungated MLP with ffn = hidden: out, up and down are all [64, 64]
  s.vocab_size = 100;
  s.hidden_size = 64;
  s.num_heads = 4;
  s.num_kv_heads = 4;
  s.head_dim = 16;
  s.intermediate_size = 64;
  s.gated_mlp = false;
  const GemmPlan plan = GemmPlan::for_engine(s, 1, limits(32, 256), DType::f16);
  ASSERT_EQ(plan.problems.size(), 3u);  // qkv, [64, 64], lm_head
  const GemmProblem& square = problem(plan, 64, 64);
  EXPECT_THAT(square.uses, ElementsAre("out", "up", "down"));
  EXPECT_TRUE(square.accumulate);
  EXPECT_EQ(square.max_m, 256);
  EXPECT_EQ(problem(plan, 100, 64).max_m, 32);
}

TEST(GemmPlan, Fp32EnginesHaveNothingToTune) {
  const GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 4096), DType::f32);
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_THAT(plan.reason, HasSubstr("cublasSgemm"));
}

TEST(GemmPlan, ForManifestRecordsTheTargetArchitecture) {
  engine::Manifest m;
  m.spec = llama2_7b();
  m.target = {"cuda", "sm_90"};
  m.dtype = DType::f16;
  m.limits = limits(32, 1024);
  const GemmPlan plan = GemmPlan::for_manifest(m);
  EXPECT_EQ(plan.arch, "sm_90");
  EXPECT_EQ(plan.problems.size(), 5u);
}

// A tuned plan with choices at 16, 32 and 64 rows for the [4096, 4096] product.
GemmPlan tuned_plan() {
  GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 64), DType::bf16);
  plan.tuned = true;
  plan.arch = "sm_90";
  plan.device = "NVIDIA H100 80GB HBM3";
  plan.cublaslt_version = 130000;
  plan.workspace_bytes = 32 << 20;
  plan.seconds = 1.5;
  int next = 1;
  for (GemmProblem& p : plan.problems) {
    for (const int64_t m : GemmPlan::buckets(p.max_m)) {
      GemmChoice c;
      c.m = m;
      c.algo = {next, 20u, 8u, 4, 2u, 1u, 3u, 65535, 7};
      c.default_algo = {next + 100, 21u, 9u, 1, 0u, 0u, 0u, 0, 0};
      c.us = 10.0 * next;
      c.default_us = 12.5 * next;
      c.candidates = 16;
      p.choices.push_back(c);
      ++next;
    }
  }
  return plan;
}

TEST(GemmPlan, JsonRoundTrip) {
  const GemmPlan plan = tuned_plan();
  const nlohmann::json j = plan.to_json();
  EXPECT_EQ(j.at("version"), 1);
  EXPECT_EQ(j.at("dtype"), "bf16");
  EXPECT_EQ(j.at("arch"), "sm_90");
  EXPECT_EQ(j.at("problems").at(0).at("choices").at(0).at("algo").at("inner_shape_id"), 65535);
  const GemmPlan back = GemmPlan::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(back.tuned);
  EXPECT_EQ(back.dtype, DType::bf16);
  EXPECT_EQ(back.arch, plan.arch);
  EXPECT_EQ(back.device, plan.device);
  EXPECT_EQ(back.cublaslt_version, plan.cublaslt_version);
  EXPECT_EQ(back.workspace_bytes, plan.workspace_bytes);
  EXPECT_DOUBLE_EQ(back.seconds, plan.seconds);
  ASSERT_EQ(back.problems.size(), plan.problems.size());
  for (std::size_t i = 0; i < plan.problems.size(); ++i) {
    const GemmProblem &a = plan.problems[i], &b = back.problems[i];
    EXPECT_EQ(a.uses, b.uses);
    EXPECT_EQ(a.n, b.n);
    EXPECT_EQ(a.k, b.k);
    EXPECT_EQ(a.max_m, b.max_m);
    EXPECT_EQ(a.accumulate, b.accumulate);
    ASSERT_EQ(a.choices.size(), b.choices.size());
    for (std::size_t c = 0; c < a.choices.size(); ++c) {
      EXPECT_EQ(a.choices[c].m, b.choices[c].m);
      EXPECT_EQ(a.choices[c].algo, b.choices[c].algo);
      EXPECT_EQ(a.choices[c].default_algo, b.choices[c].default_algo);
      EXPECT_DOUBLE_EQ(a.choices[c].us, b.choices[c].us);
      EXPECT_DOUBLE_EQ(a.choices[c].default_us, b.choices[c].default_us);
      EXPECT_EQ(a.choices[c].candidates, b.choices[c].candidates);
    }
  }
  EXPECT_EQ(back.tuned_choices(), plan.tuned_choices());
  EXPECT_DOUBLE_EQ(back.mean_speedup(), 1.25);
}

TEST(GemmPlan, RoundTripThroughTheManifest) {
  engine::Manifest m;
  m.spec = llama2_7b();
  m.target = {"cuda", "sm_90"};
  m.dtype = DType::bf16;
  m.kernel_choices[kGemmChoicesKey] = tuned_plan().to_json();
  const engine::Manifest back = engine::manifest_from_json(engine::manifest_to_json(m), "engine.json");
  const GemmPlan plan = GemmPlan::from_kernel_choices(back.kernel_choices);
  EXPECT_TRUE(plan.tuned);
  EXPECT_EQ(plan.tuned_choices(), tuned_plan().tuned_choices());
}

TEST(GemmPlan, UntunedPlanRoundTripsWithItsReason) {
  GemmPlan plan = GemmPlan::for_engine(llama2_7b(), 1, limits(64, 4096), DType::f16);
  plan.reason = "--tune off";
  const GemmPlan back = GemmPlan::from_json(plan.to_json());
  EXPECT_FALSE(back.tuned);
  EXPECT_EQ(back.reason, "--tune off");
  EXPECT_EQ(back.problems.size(), 5u);
  EXPECT_EQ(back.lookup(4096, 4096, 100, DType::f16), nullptr);
}

TEST(GemmPlan, LookupTakesTheSmallestBucketAtOrAboveM) {
  const GemmPlan plan = tuned_plan();
  const GemmProblem& out = problem(plan, 4096, 4096);
  ASSERT_EQ(out.choices.size(), 3u);
  auto bucket = [&](int64_t m) {
    const GemmChoice* c = plan.lookup(4096, 4096, m, DType::bf16);
    return c ? c->m : int64_t{0};
  };
  EXPECT_EQ(bucket(9), 16);
  EXPECT_EQ(bucket(16), 16);
  EXPECT_EQ(bucket(17), 32);
  EXPECT_EQ(bucket(32), 32);
  EXPECT_EQ(bucket(33), 64);
  EXPECT_EQ(bucket(64), 64);
  EXPECT_EQ(bucket(65), 0);                                      // more rows than were tuned: the heuristic's
  EXPECT_EQ(plan.lookup(4096, 4096, 16, DType::f16), nullptr);   // another dtype
  EXPECT_EQ(plan.lookup(4096, 4097, 16, DType::bf16), nullptr);  // another shape
  EXPECT_EQ(plan.lookup(4096, 4096, 32, DType::bf16), &out.choices[1]);
}

TEST(GemmPlan, MalformedJsonIsRefusedByName) {
  nlohmann::json j = tuned_plan().to_json();
  j["version"] = 2;
  EXPECT_THAT(error_of([&] { GemmPlan::from_json(j); }), HasSubstr("has version 2; this kiln reads version 1"));
  j = tuned_plan().to_json();
  j.erase("problems");
  EXPECT_THAT(error_of([&] { GemmPlan::from_json(j); }), HasSubstr("kernel_choices.gemm is malformed"));
  j = tuned_plan().to_json();
  j["problems"][0]["choices"][0]["algo"]["cluster_shape_id"] = 70000;  // a uint16_t
  EXPECT_THAT(error_of([&] { GemmPlan::from_json(j); }), HasSubstr("'cluster_shape_id' = 70000 is out of range"));
  j = tuned_plan().to_json();
  std::swap(j["problems"][0]["choices"][0], j["problems"][0]["choices"][1]);
  EXPECT_THAT(error_of([&] { GemmPlan::from_json(j); }), HasSubstr("not ascending"));
}

TEST(GemmPlan, EnginesWithoutChoicesAreUntuned) {
  const GemmPlan plan = GemmPlan::from_kernel_choices(nlohmann::json::object());
  EXPECT_FALSE(plan.tuned);
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_EQ(plan.lookup(4096, 4096, 16, DType::f16), nullptr);
}

}  // namespace
}  // namespace kiln::runtime
