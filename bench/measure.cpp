// litelens_bench_measure OUT CMD [ARGS...]: runs CMD and writes one line to OUT:
//   <wall seconds> <peak RSS bytes> <user CPU seconds> <system CPU seconds> <exit code>
//
// Why a launcher: Linux carries a process's peak RSS across fork and exec (the child's
// ru_maxrss starts at its parent's RSS at fork time), so timing children straight from the
// Python harness (~45 MB with NumPy loaded) would floor every peak RSS at the harness's size.
// This launcher is a small static program: the floor becomes a few hundred KiB. CMD's stdout
// and stderr pass through.
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: litelens_bench_measure OUT CMD [ARGS...]\n");
    return 2;
  }
  timespec t0{}, t1{};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("litelens_bench_measure: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    std::fprintf(stderr, "litelens_bench_measure: cannot run %s: %s\n", argv[2], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("litelens_bench_measure: wait4");
      return 2;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double wall = double(t1.tv_sec - t0.tv_sec) + double(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::FILE* out = std::fopen(argv[1], "w");
  if (!out) {
    std::perror("litelens_bench_measure: cannot write the result");
    return 2;
  }
  std::fprintf(out, "%.9f %lld %.6f %.6f %d\n", wall, static_cast<long long>(usage.ru_maxrss) * 1024,
               double(usage.ru_utime.tv_sec) + double(usage.ru_utime.tv_usec) * 1e-6,
               double(usage.ru_stime.tv_sec) + double(usage.ru_stime.tv_usec) * 1e-6, code);
  std::fclose(out);
  return code;
}
