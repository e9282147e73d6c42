#include "serving/text_streamer.h"

#include <algorithm>

namespace kiln::serving {

TextStreamer::TextStreamer(const tokenizer::Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), detokenizer_(tokenizer, /*skip_special_tokens=*/true), stops_(std::move(stop_strings)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string TextStreamer::push(int32_t token, float logprob) {
  if (stopped_) return "";
  details_.push_back({token, tokenizer_.decode({token}, false), logprob, tokenizer_.is_special(token)});
  pending_ += detokenizer_.push(token);
  return release(false);
}

std::string TextStreamer::finish() {
  if (stopped_) return "";
  pending_ += detokenizer_.finish();
  return release(true);
}

std::string TextStreamer::release(bool final) {
  // A complete stop string ends the text where it begins.
  std::size_t cut = std::string::npos;
  for (const auto& stop : stops_) cut = std::min(cut, pending_.find(stop));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    text_ += out;
    return out;
  }
  // Otherwise hold back the longest tail that could still grow into a stop string.
  std::size_t hold = 0;
  if (!final) {
    for (const auto& stop : stops_) {
      for (std::size_t n = std::min(stop.size() - 1, pending_.size()); n > hold; --n) {
        if (pending_.compare(pending_.size() - n, n, stop, 0, n) == 0) {
          hold = n;
          break;
        }
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  text_ += out;
  return out;
}

}  // namespace kiln::serving
