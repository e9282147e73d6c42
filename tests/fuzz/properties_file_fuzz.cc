// Fuzzes the serving.properties parser (escapes, continuation lines, separators).
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "serving/properties_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::expect_only_kiln_errors([&] {
    for (const auto& property : kiln::serving::parse_properties(kiln::fuzz::as_text(data, size), "fuzz.properties")) {
      (void)property;
    }
  });
  return 0;
}
