#include "launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace kfac::tool {

namespace {
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 29500;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// A SIGINT, SIGTERM or SIGHUP sent to the launcher alone (not to its process group) is passed on to the ranks, which
// then checkpoint and stop together.
volatile std::sig_atomic_t g_signal = 0;
void remember_signal(int signal) { g_signal = signal; }
}  // namespace

int launch_local_ranks(int ranks, int port, double timeout_s, char** argv) {
  if (port == 0) port = free_port();
  std::vector<pid_t> children;
  const pid_t launcher = getpid();
  for (int r = 0; r < ranks; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      // A rank never outlives its launcher: SIGTERM when it dies (even by SIGKILL), which the rank treats as
      // Ctrl-C. If it died before this line, stop now.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != launcher) _exit(143);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      execv("/proc/self/exe", argv);
      std::perror("kfac: cannot start a rank (execv)");
      _exit(127);
    }
    if (pid < 0) {
      std::perror("kfac: cannot start a rank (fork)");
      for (pid_t c : children) kill(c, SIGKILL);
      return 2;
    }
    children.push_back(pid);
  }
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, remember_signal);
  std::vector<bool> done(children.size(), false);
  int result = 0, remaining = ranks;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  while (remaining > 0) {
    bool reaped = false;
    for (size_t r = 0; r < children.size(); ++r) {
      if (done[r]) continue;
      int status = 0;
      if (waitpid(children[r], &status, WNOHANG) != children[r]) continue;
      done[r] = true, --remaining, reaped = true;
      const int code = exit_code(status);
      if (code != 0 && result == 0) {
        result = code;
        if (code != 130)  // 130: Ctrl-C, every rank checkpoints and stops by itself
          std::fprintf(stderr, "kfac: rank %zu of %d %s %d; waiting up to %.0f s for the other ranks to stop\n", r,
                       ranks, WIFEXITED(status) ? "exited with code" : "was killed by signal",
                       WIFEXITED(status) ? code : WTERMSIG(status), timeout_s + 5);
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>((timeout_s + 5) * 1000));
      }
    }
    if (const int signal = g_signal; signal != 0) {
      g_signal = 0;
      for (size_t r = 0; r < children.size(); ++r)
        if (!done[r]) kill(children[r], signal);
    }
    if (remaining > 0 && std::chrono::steady_clock::now() > deadline) {
      for (size_t r = 0; r < children.size(); ++r)
        if (!done[r]) {
          std::fprintf(stderr, "kfac: rank %zu did not stop; killing it\n", r);
          kill(children[r], SIGKILL);
        }
      deadline = std::chrono::steady_clock::time_point::max();
    }
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

}  // namespace kfac::tool
