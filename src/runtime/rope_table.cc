#include "runtime/rope_table.h"

#include <cmath>
#include <numbers>

#include "core/dtype.h"

namespace kiln::runtime {

std::vector<double> rope_inv_freq(const RopeSpec& rope) {
  const int64_t half = rope.rotary_dim / 2;
  std::vector<double> inv(static_cast<std::size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv[i] = 1.0 / std::pow(rope.theta, static_cast<double>(2 * i) / static_cast<double>(rope.rotary_dim));
  }
  if (rope.scaling == RopeScaling::linear) {
    for (auto& f : inv) f /= rope.factor;
  } else if (rope.scaling == RopeScaling::llama3) {
    // As transformers' _compute_llama3_parameters: long wavelengths are divided by
    // `factor`, short ones kept, and the band between interpolated smoothly.
    const double old_context = static_cast<double>(rope.original_max_positions);
    const double low_wavelen = old_context / rope.low_freq_factor;
    const double high_wavelen = old_context / rope.high_freq_factor;
    for (auto& f : inv) {
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= rope.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_context / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
        f = (1 - smooth) * f / rope.factor + smooth * f;
      }
    }
  }
  // transformers keeps inv_freq as a buffer, which model.to(dtype) rounds to
  // the model's dtype; angles are then computed from the rounded values.
  if (rope.frequency_dtype != DType::f32) {
    for (auto& f : inv) {
      const float x = static_cast<float>(f);
      uint16_t stored;
      convert_from_f32(&x, rope.frequency_dtype, &stored, 1);
      float rounded;
      convert_to_f32(rope.frequency_dtype, &stored, &rounded, 1);
      f = rounded;
    }
  }
  return inv;
}

RopeTable RopeTable::build(const RopeSpec& rope, int64_t positions) {
  RopeTable t;
  t.half = rope.rotary_dim / 2;
  t.positions = positions;
  const auto inv = rope_inv_freq(rope);
  t.cos.resize(static_cast<std::size_t>(positions * t.half));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < t.half; ++i) {
      const double angle = static_cast<double>(p) * inv[i];
      t.cos[p * t.half + i] = static_cast<float>(std::cos(angle));
      t.sin[p * t.half + i] = static_cast<float>(std::sin(angle));
    }
  }
  return t;
}

}  // namespace kiln::runtime
