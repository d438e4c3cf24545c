// ServiceProcess: a long-running peer of a measurement (the sync agent, the
// backup daemon) in a forked child of the benchmark, started before the
// timed phase and stopped by pid after it: SIGTERM, a bounded wait, then
// SIGKILL, and always reaped. Unlike a ProcessGroup worker it measures
// nothing; it serves until told to stop.
//
// Thread safety: start() forks, so call it while no other thread of the
// process is inside a Store call (see shm/store.hpp on fork()); the object
// belongs to one thread.
// Cross-process safety: the child resets the interrupt handlers (the
// parent's cleanup is not its own), dies with its parent (PR_SET_PDEATHSIG),
// leaves by _exit (the parent's segment guards and servers are never
// destroyed in it), and is registered for the parent's interrupt cleanup
// (interrupt_cleanup.hpp) until stopped. Only the starting process stops it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

namespace shmsession::bench {

class ServiceProcess {
 public:
  // Forks a child that runs `body` and exits with its return value (1 and
  // a line "shmbench: <name>: <why>" on stderr if it throws).
  // Throws std::runtime_error if fork fails.
  static ServiceProcess start(std::string name, const std::function<int()>& body);

  ServiceProcess(ServiceProcess&& other) noexcept;
  ServiceProcess& operator=(ServiceProcess&&) = delete;
  ServiceProcess(const ServiceProcess&) = delete;
  ~ServiceProcess();

  const std::string& name() const noexcept { return name_; }
  pid_t pid() const noexcept { return pid_; }

  // Whether the child still runs; reaps it (and remembers how it ended)
  // if it has exited.
  bool running() noexcept;
  // "exited with status 3", "killed by signal 9", "running".
  std::string how_it_ended() const;

  // SIGTERM, then SIGKILL if it still runs after `grace`; reaps it. Returns
  // true if it exited with status 0 (a service told to stop leaves cleanly).
  // Does nothing but report outside the starting process or once stopped.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds{5}) noexcept;

 private:
  ServiceProcess(std::string name, pid_t pid);
  void reaped(int status) noexcept;

  std::string name_;
  pid_t pid_ = -1;
  pid_t owner_ = -1;
  int cleanup_slot_ = -1;  // see interrupt_cleanup.hpp
  bool ended_ = false;
  int status_ = 0;  // as waitpid reports it, once ended_
};

}  // namespace shmsession::bench
