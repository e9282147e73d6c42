// An engine opened for this machine's target with its backend and generator:
// what generate and verify share.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine_reader.h"
#include "runtime/backend.h"
#include "runtime/generator.h"

namespace kiln::cli {

struct EngineSession {
  engine::Engine engine;
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<runtime::Generator> generator;
  double load_seconds = 0;

  // `verify_weights`: check the blobs' checksums while the weights load.
  static std::unique_ptr<EngineSession> open(const std::filesystem::path& dir, bool verify_weights);
};

// "1, 2,3" -> {1, 2, 3}; nullopt on anything else, with the offending item in *bad_item.
std::optional<std::vector<int64_t>> parse_int_list(const std::string& text, std::string* bad_item);
// "1,2,3" -> {1, 2, 3}; throws naming the option on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const char* option);

}  // namespace kiln::cli
