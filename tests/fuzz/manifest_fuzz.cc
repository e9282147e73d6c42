// Fuzzes engine.json: the JSON document read back into a Manifest (every field checked before use), then written
// out again. Inputs that are not JSON are dropped before the code under test sees them.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "engine/manifest.h"
#include "engine/manifest_check.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  kiln::fuzz::expect_only_kiln_errors([&] {
    const kiln::engine::Manifest manifest = kiln::engine::manifest_from_json(json, "fuzz/engine.json");
    // As Engine::open does before anything is mapped or allocated from it.
    kiln::engine::validate_manifest(manifest, "fuzz/engine.json");
    (void)manifest.total_bytes();
    (void)kiln::engine::manifest_to_json(manifest).dump();
  });
  return 0;
}
