// Killing a process at a chosen test hook (shm/detail/test_hooks.hpp): a
// forked child parks at the hook, the test SIGKILLs it there, and the
// store's survivors are checked in another process that may not hang.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include <boost/test/unit_test.hpp>

#include "shm/detail/test_hooks.hpp"
#include "shm/store.hpp"
#include "test/support/test_support.hpp"

namespace shmsession::test {

inline Signal* g_parked = nullptr;
inline shm::detail::HookPoint g_target;

inline void park_here(shm::detail::HookPoint point) {
  if (point != g_target) return;
  g_parked->notify();
  for (;;) ::pause();  // wait for SIGKILL
}

// Runs `work` in a child that parks at `point`, then SIGKILLs it there.
// The hook is set before the child attaches, so points inside attach are
// reached too; `work` gets the store the child attached.
inline void kill_child_at(const std::string& store, shm::detail::HookPoint point,
                          const std::function<void(Store&)>& work) {
  using namespace std::chrono_literals;
  Signal parked;
  ChildProcess child([&] {
    g_parked = &parked;
    g_target = point;
    shm::detail::set_test_hook(park_here);
    Store mine = Store::attach(store);
    work(mine);
    return 1;  // never reached: the hook parks
  });
  BOOST_REQUIRE_MESSAGE(parked.wait(60s), "child never reached the hook");
  child.kill(SIGKILL);
  BOOST_TEST(child.wait() == 128 + SIGKILL);
}

// Runs `check` in a separate process and fails (instead of hanging the
// suite) if it does not finish within a generous bound (60 s: a loaded or
// sanitized machine must not fail it by being slow).
inline void check_without_hanging(const std::function<int()>& check) {
  using namespace std::chrono_literals;
  ChildProcess verifier(check);
  int code = verifier.wait_for(60s);
  BOOST_TEST(code != -1, "a process hung on the shard the dead child held");
  BOOST_TEST(code == 0);
}

}  // namespace shmsession::test
