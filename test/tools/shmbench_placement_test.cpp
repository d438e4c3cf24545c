// shmbench's worker placement: a pinned loop runs worker i on the
// (first_cpu + i)-th usable CPU for its whole measurement; an unpinned one
// leaves the workers the parent's CPUs.
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "tools/shmbench/process_group.hpp"

using namespace shmsession::bench;

namespace {

// What each worker saw, in memory the parent shares with the workers.
struct Seen {
  std::atomic<int> cpu_lo[8];
  std::atomic<int> cpu_hi[8];
  std::atomic<int> allowed[8];  // CPUs in the worker's affinity mask
};

Seen* shared_seen() {
  void* page = ::mmap(nullptr, sizeof(Seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_TEST_REQUIRE(page != MAP_FAILED);
  return new (page) Seen{};
}

int allowed_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  BOOST_TEST_REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  return CPU_COUNT(&set);
}

// Each worker records the lowest and highest CPU it ran on over 2,000
// operations, with a yield in each so the kernel has chances to move it.
LoopResult record_cpus(int processes, Seen* seen, Placement placement) {
  return run_in_processes(
      processes,
      [seen](WorkerContext& ctx) {
        const int i = ctx.index();
        seen->cpu_lo[i] = 1 << 30;
        seen->cpu_hi[i] = -1;
        seen->allowed[i] = allowed_count();
        ctx.measure(2000, [&](std::uint64_t) {
          const int cpu = ::sched_getcpu();
          if (cpu < seen->cpu_lo[i]) seen->cpu_lo[i] = cpu;
          if (cpu > seen->cpu_hi[i]) seen->cpu_hi[i] = cpu;
          ::sched_yield();
        });
      },
      placement);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_pinned_loop_runs_worker_i_on_the_cpu_after_first_cpu_plus_i) {
  const std::vector<int> cpus = usable_cpus();
  BOOST_TEST_REQUIRE(!cpus.empty());
  BOOST_TEST(static_cast<int>(cpus.size()) == allowed_count());
  Seen* seen = shared_seen();
  for (int first = 0; first < 3; ++first) {
    const int processes = 3;  // more workers than a 2-CPU machine has CPUs: they wrap around
    const LoopResult loop = record_cpus(processes, seen, Placement{first});
    BOOST_TEST(loop.ops == 2000u * processes);
    for (int i = 0; i < processes; ++i) {
      const int expected = cpus[static_cast<std::size_t>(first + i) % cpus.size()];
      BOOST_TEST(seen->allowed[i] == 1, "worker " << i << " may run on " << seen->allowed[i] << " CPUs");
      BOOST_TEST(seen->cpu_lo[i] == expected, "worker " << i << " of first_cpu " << first);
      BOOST_TEST(seen->cpu_hi[i] == expected, "worker " << i << " of first_cpu " << first);
    }
  }
  ::munmap(seen, sizeof(Seen));
}

BOOST_AUTO_TEST_CASE(an_unpinned_loop_leaves_the_workers_every_cpu_of_the_parent) {
  Seen* seen = shared_seen();
  const LoopResult loop = record_cpus(2, seen, Placement{});
  BOOST_TEST(loop.ops == 4000u);
  for (int i = 0; i < 2; ++i) BOOST_TEST(seen->allowed[i] == allowed_count());
  ::munmap(seen, sizeof(Seen));
}
