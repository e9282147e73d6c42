// Fuzzes config.json -> ModelSpec: the JSON read as a HuggingFace config, its adapter chosen by the registry
// (architectures / model_type) and the adapter's spec built from it, as `kiln build` does.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "checkpoint/hf_config.h"
#include "fuzz_support.h"
#include "models/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  kiln::fuzz::expect_only_kiln_errors([&] {
    const auto config = kiln::checkpoint::HfConfig::from_json(std::move(json), "fuzz/config.json");
    const kiln::models::Adapter& adapter = kiln::models::Registry::builtin().find(config);
    const kiln::ModelSpec spec = adapter.spec(config);
    (void)spec;
  });
  return 0;
}
