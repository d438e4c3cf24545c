// shmsession-demo: several writer processes share one store, as prefork
// app-server workers would. Each worker plays requests of random sessions:
// it reads the session, adds an item to its cart, bumps its visit counter
// (optimistic: commit only if nobody committed meanwhile, else retry) and
// records which worker served it. At the end the demo checks that the visit
// counters add up to every request served: no update was lost.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "shm/store.hpp"

using namespace shmsession;
using Clock = std::chrono::steady_clock;

namespace {

struct WorkerResult {
  long requests = 0;
  long retries = 0;
};

std::string session_id(int k) { return "user-" + std::to_string(k); }

// One request: read, change, commit if the session did not move meanwhile.
void serve(Store& store, const std::string& id, int worker, long request, SessionSnapshot& snap, WorkerResult& result) {
  for (;;) {
    if (!store.read_into(id, {}, snap)) {
      store.create_session(id);
      continue;
    }
    const Attribute* visits = snap.find("visits");
    const Attribute* cart = snap.find("cart");
    std::string new_cart = cart ? cart->value : std::string();
    if (new_cart.size() > 400) new_cart.erase(0, new_cart.find(',', 100) + 1);  // keep carts small
    new_cart += (new_cart.empty() ? "" : ",") + std::string("sku") + std::to_string(request % 97);
    CommitBatch batch;
    batch.put("visits", std::to_string((visits ? std::stol(visits->value) : 0) + 1))
        .put("cart", new_cart)
        .put("served_by", "worker-" + std::to_string(worker));
    if (store.commit_if_version(id, snap.version, batch)) return;
    ++result.retries;
  }
}

int run_worker(const std::string& name, int worker, int sessions, double seconds, int result_fd) {
  Store store = Store::attach(name);
  std::mt19937 rng(static_cast<unsigned>(worker) * 7919u + 1);
  WorkerResult result;
  SessionSnapshot snap;
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    for (int i = 0; i < 64; ++i) {
      serve(store, session_id(static_cast<int>(rng() % sessions)), worker, result.requests, snap, result);
      ++result.requests;
    }
  }
  return ::write(result_fd, &result, sizeof result) == sizeof result ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmsession-demo: writer processes sharing one session store"};
  std::string name = "shmsession-demo";
  int writers = 4, sessions = 200;
  double seconds = 2.0;
  app.add_option("--store", name, "store name (created fresh; an old one of that name is replaced)");
  app.add_option("--writers", writers, "writer processes")->check(CLI::Range(1, 64));
  app.add_option("--sessions", sessions, "distinct sessions")->check(CLI::Range(1, 1000000));
  app.add_option("--seconds", seconds, "how long the writers run")->check(CLI::Range(0.1, 3600.0));
  CLI11_PARSE(app, argc, argv);
  try {
    Store::remove(name);
    CreateOptions options;
    options.size_bytes = std::uint64_t{64} << 20;
    Store store = Store::create(name, options);
    std::printf("created store '%s' (%llu MiB); %d writer processes, %d sessions, %.1f s\n", name.c_str(),
                static_cast<unsigned long long>(options.size_bytes >> 20), writers, sessions, seconds);
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
      std::fflush(stdout);
      pid_t pid = ::fork();
      if (pid == 0) {
        int code = 1;
        try {
          code = run_worker(name, w, sessions, seconds, fds[1]);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "shmsession-demo: worker %d: %s\n", w, e.what());
        }
        ::_exit(code);
      }
      pids.push_back(pid);
    }
    ::close(fds[1]);
    long requests = 0, retries = 0;
    std::printf("%-8s %-8s %10s %8s %10s\n", "worker", "pid", "requests", "retries", "req/s");
    for (int w = 0; w < writers; ++w) {
      WorkerResult r;
      int status = 0;
      bool ok = ::read(fds[0], &r, sizeof r) == sizeof r;
      ::waitpid(pids[w], &status, 0);
      if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("a worker failed");
      std::printf("%-8d %-8d %10ld %8ld %10.0f\n", w, pids[w], r.requests, r.retries,
                  static_cast<double>(r.requests) / seconds);
      requests += r.requests;
      retries += r.retries;
    }
    long visits = 0;
    store.for_each_session([&](const SessionInfo& info) {
      visits += std::stol(store.read(info.id)->find("visits")->value);
      return true;
    });
    std::printf("total: %ld requests (%.0f/s), %ld optimistic retries\n", requests,
                static_cast<double>(requests) / seconds, retries);
    std::printf("check: visit counters add up to %ld of %ld requests: %s\n", visits, requests,
                visits == requests ? "no update lost" : "UPDATES LOST");
    return visits == requests ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmsession-demo: %s\n", e.what());
    return 1;
  }
}
