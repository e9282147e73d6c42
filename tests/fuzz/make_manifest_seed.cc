// Writes an engine.json seed for manifest_fuzz (the repository holds no engine): a small Llama-style manifest
// with one rank and two tensors, as manifest_to_json writes it. Usage: make_manifest_seed OUT_FILE
#include <fstream>
#include <iostream>

#include "engine/manifest.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_manifest_seed OUT_FILE\n";
    return 2;
  }
  kiln::engine::Manifest manifest;
  manifest.kiln_version = "0.1.0";
  manifest.spec.family = "llama";
  manifest.spec.vocab_size = 32;
  manifest.spec.hidden_size = 8;
  manifest.spec.num_layers = 1;
  manifest.target.backend = "cpu";
  manifest.target.arch = "x86_64";
  manifest.source = "fixtures/llama";
  manifest.created = "2026-01-01T00:00:00Z";
  manifest.kernel_choices = {{"gemm", "blocked"}};
  kiln::engine::RankBlob rank;
  rank.file = "rank0.bin";
  rank.size = 1280;
  rank.tensors.push_back({"embed.weight", kiln::DType::f32, {32, 8}, "replicated", 0, 1024});
  rank.tensors.push_back({"final_norm.weight", kiln::DType::f32, {8}, "replicated", 1024, 32});
  manifest.ranks.push_back(rank);
  std::ofstream(argv[1]) << kiln::engine::manifest_to_json(manifest).dump(2) << "\n";
  return 0;
}
