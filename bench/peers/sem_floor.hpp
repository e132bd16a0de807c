#pragma once
/// \file sem_floor.hpp
/// The physical floor of a process round trip: a forked child and its parent
/// handing a value back and forth through two process-shared POSIX
/// semaphores in an anonymous MAP_SHARED mapping. No codec, no queue, no
/// bookkeeping: nothing a process pool can do is cheaper.

#include <cerrno>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <system_error>

#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace atasker_bench {

namespace detail {
inline void sem_wait_retry(sem_t* s) {
    while (sem_wait(s) != 0 && errno == EINTR) {
    }
}
}  // namespace detail

class SemPingPongWorker {
public:
    /// Forks the child. The child inherits the calling thread's CPU affinity
    /// and uses only async-signal-safe calls, so forking a process that
    /// runs threads is safe here.
    SemPingPongWorker() {
        void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "cannot map shared memory");
        shared_ = new (mem) Shared;
        sem_init(&shared_->request, 1, 0);
        sem_init(&shared_->response, 1, 0);
        pid_ = fork();
        if (pid_ < 0) {
            const int e = errno;
            munmap(mem, sizeof(Shared));
            throw std::system_error(e, std::generic_category(), "cannot fork the ping-pong worker");
        }
        if (pid_ == 0) {
            for (;;) {
                detail::sem_wait_retry(&shared_->request);
                if (shared_->stop) _exit(0);
                shared_->value = shared_->value * shared_->value;
                sem_post(&shared_->response);
            }
        }
    }
    SemPingPongWorker(const SemPingPongWorker&) = delete;
    SemPingPongWorker& operator=(const SemPingPongWorker&) = delete;
    ~SemPingPongWorker() {
        shared_->stop = 1;
        sem_post(&shared_->request);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        sem_destroy(&shared_->request);
        sem_destroy(&shared_->response);
        munmap(shared_, sizeof(Shared));
    }

    /// Hands x to the child without waiting.
    void send(std::int64_t x) {
        shared_->value = x;
        sem_post(&shared_->request);
    }
    /// Waits for the child's answer to the last send().
    std::int64_t receive() {
        detail::sem_wait_retry(&shared_->response);
        return shared_->value;
    }
    std::int64_t round_trip(std::int64_t x) {
        send(x);
        return receive();
    }
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    struct Shared {
        sem_t request;
        sem_t response;
        std::int64_t value = 0;
        volatile int stop = 0;
    };
    Shared* shared_ = nullptr;
    pid_t pid_ = -1;
};

}  // namespace atasker_bench
