// The message of the kiln::Error an action throws, for asserting what a
// refusal says; a test failure (and "") when it throws none. Shared by the
// tests of every layer.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace kiln::test {

template <typename Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no kiln::Error thrown";
  return "";
}

}  // namespace kiln::test
