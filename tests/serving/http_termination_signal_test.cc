#include "serving/http_termination_signal.h"

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "core/error.h"

namespace kiln::serving {
namespace {

using namespace std::chrono_literals;

TEST(TerminationSignal, SigtermAndSigintWakeTheWaiter) {
  TerminationSignal termination;
  EXPECT_EQ(termination.wait_for(10ms), std::nullopt);
  std::raise(SIGTERM);
  EXPECT_EQ(termination.wait_for(1s), SIGTERM);
  std::raise(SIGINT);
  EXPECT_EQ(termination.wait(), SIGINT);
}

TEST(TerminationSignal, NotifyWakesTheWaiterFromAnotherThread) {
  TerminationSignal termination;
  std::thread notifier([&] {
    std::this_thread::sleep_for(20ms);
    termination.notify();
  });
  EXPECT_EQ(termination.wait_for(2s), 0);
  notifier.join();
}

TEST(TerminationSignal, OneAtATimeAndPreviousHandlersComeBack) {
  struct sigaction before {};
  ::sigaction(SIGTERM, nullptr, &before);
  {
    TerminationSignal termination;
    EXPECT_THROW(TerminationSignal second, Error);
  }
  struct sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

}  // namespace
}  // namespace kiln::serving
