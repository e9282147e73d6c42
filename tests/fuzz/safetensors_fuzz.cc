// Fuzzes safetensors parsing: the 8-byte header length, the JSON header and its checks against the data section.
// SafetensorsFile maps a file, so each input is written to a file in /dev/shm.
#include <cstddef>
#include <cstdint>

#include "checkpoint/safetensors_file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ShmFile file("model.safetensors");
  const auto& path = file.write(kiln::fuzz::as_text(data, size));
  kiln::fuzz::expect_only_kiln_errors([&] {
    const auto tensors = kiln::checkpoint::SafetensorsFile::open(path);
    for (const std::string& name : tensors->names()) {
      const kiln::TensorView view = tensors->get(name);
      // Touch the first and last byte the view claims: a view past the map faults.
      const std::size_t bytes = view.nbytes();
      if (bytes > 0) {
        const auto* begin = static_cast<const volatile std::byte*>(view.data);
        const std::byte first = begin[0];
        const std::byte last = begin[bytes - 1];
        (void)first;
        (void)last;
      }
    }
    (void)tensors->metadata().dump();
  });
  return 0;
}
