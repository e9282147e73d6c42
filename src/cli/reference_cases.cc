#include "cli/reference_cases.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/safetensors_file.h"
#include "core/error.h"

namespace kiln::cli {

Reference Reference::load(const std::filesystem::path& dir) {
  const auto json_path = dir / "reference.json";
  std::ifstream in(json_path);
  if (!in)
    throw_error("cannot read ", json_path.string(), " (a reference directory holds reference.json and ",
                "reference.safetensors)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_error(json_path.string(), " is not valid JSON: ", e.what());
  }
  const auto tensors = checkpoint::SafetensorsFile::open(dir / "reference.safetensors");
  Reference ref;
  ref.vocab_size = j.at("vocab_size").get<int64_t>();
  for (std::size_t i = 0; i < j.at("cases").size(); ++i) {
    const auto& c = j["cases"][i];
    ReferenceCase rc;
    rc.prompt = c.at("prompt").get<std::vector<int32_t>>();
    rc.generated = c.at("generated").get<std::vector<int32_t>>();
    rc.greedy_margins = c.value("greedy_margins", std::vector<double>{});
    const TensorView logits = tensors->get("logits_" + std::to_string(i));
    const auto rows = static_cast<int64_t>(rc.prompt.size() + rc.generated.size());
    if (logits.shape != Shape{rows, ref.vocab_size} || logits.dtype != DType::f32) {
      throw_error(dir.string(), ": logits_", i, " has shape ", shape_str(logits.shape), ", expected [", rows, ", ",
                  ref.vocab_size, "] fp32");
    }
    const auto* p = static_cast<const float*>(logits.data);
    rc.logits.assign(p, p + rows * ref.vocab_size);
    ref.cases.push_back(std::move(rc));
  }
  return ref;
}

}  // namespace kiln::cli
