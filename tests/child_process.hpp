#pragma once
// A child process of the test's (or the bench's) own: fork and exec, with
// the child killed when its parent dies, however the parent ends.

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

namespace test_support {

/// Starts `args` (args[0] looked up in PATH) as a child process that dies
/// with this one (PDEATHSIG). Its standard output and error go to
/// `output_fd` where that is not -1, its standard error alone to
/// `error_fd` where that is not -1. A child that cannot exec says so on its
/// standard error and exits 127. \throws std::runtime_error when fork fails.
inline pid_t spawn_child(std::vector<std::string> args, int output_fd = -1, int error_fd = -1) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed for " + args[0]);
    if (pid == 0) {
        // Only async-signal-safe calls until exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        if (output_fd >= 0) {
            ::dup2(output_fd, STDOUT_FILENO);
            ::dup2(output_fd, STDERR_FILENO);
        }
        if (error_fd >= 0) ::dup2(error_fd, STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        static constexpr char failed[] = "exec failed: the binary is missing or cannot run\n";
        (void)!::write(STDERR_FILENO, failed, sizeof failed - 1);
        ::_exit(127);
    }
    return pid;
}

}  // namespace test_support
