// Just enough XML for S3's responses (ListObjectsV2, multipart, errors):
// elements found by tag name, text with entities decoded. S3 responses have
// no mixed content or same-named nesting, which is what keeps this small.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::storage {

// &amp; &lt; &gt; &quot; &apos; and numeric &#N; / &#xH; references (to UTF-8).
std::string xml_decode(std::string_view text);

// The raw inner text of every <tag ...>...</tag> (or empty for <tag/>), in order.
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag);

// The decoded text of the first <tag>, if any.
std::optional<std::string> xml_text(std::string_view xml, std::string_view tag);

}  // namespace kiln::storage
