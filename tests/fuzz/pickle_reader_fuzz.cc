// Fuzzes the pickle subset reader of PyTorch .bin checkpoints (data.pkl inside the zip).
#include <cstddef>
#include <cstdint>
#include <span>

#include "checkpoint/pickle_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::expect_only_kiln_errors([&] {
    const auto value =
        kiln::checkpoint::read_pickle(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.pkl");
    (void)value;
  });
  return 0;
}
