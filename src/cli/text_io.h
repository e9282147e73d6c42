// What the text-facing subcommands share: where a tokenizer lives (a
// tokenizer directory, or an engine's tokenizer/), reading a text or a
// messages file, and the prompt a generate request starts from.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::cli {

// --tokenizer DIR, or --engine DIR (whose tokenizer/ holds the files); exactly one.
std::filesystem::path tokenizer_dir(const std::string& tokenizer, const std::string& engine);

std::string read_text_file(const std::string& path, const char* option);

// A chat: a JSON array of {"role", "content"} objects, or an object with "messages".
nlohmann::json read_messages(const std::string& path);

}  // namespace kiln::cli
