#pragma once
// ThreadLane: thread tasks, run on the threads of a ThreadPool. Critical
// tasks may grow the pool past its capacity (API.md, "Admission").

#include "core/lane.hpp"
#include "thread/thread_pool.hpp"

namespace atasker::detail {

class ThreadLane final : public Lane, ThreadPool::Host {
public:
    explicit ThreadLane(LaneHost& host);

    void configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) override;
    void start(std::unique_lock<SupervisorMutex>& lock) override;
    void wake() noexcept override { pool_.wake_for(admission_); }
    void describe(PoolInfo& info) const override;
    void begin_stop() override { pool_.begin_stop(); }
    void join(std::unique_lock<SupervisorMutex>& lock, bool all) override { pool_.join(lock, all); }
    [[nodiscard]] bool empty() const noexcept override { return pool_.empty(); }
    [[nodiscard]] bool busy() const noexcept override { return pool_.busy() != 0; }
    [[nodiscard]] bool runs_this_thread() const noexcept override { return ThreadPool::current_host() == this; }

    [[nodiscard]] bool hungry() const noexcept override {
        // Threads past those busy or on their way to the mutex, within capacity.
        return pool_.threads() - pool_.sleeping() < pool_.options().capacity();
    }

private:
    // ThreadPool::Host
    Job take(std::int64_t now) noexcept override { return host_.take(*this, now); }
    void run(const Job& job) noexcept override;
    bool finish(const Job& job, std::int64_t now, std::string& log_line) override {
        return host_.complete(job.task, now, log_line);
    }
    void settle(const Job& job, bool ended, const std::string& log_line) noexcept override {
        if (ended) host_.settle(job.task, log_line);
    }
    void quiet() noexcept override { host_.lane_quiet(); }

    PoolOptions options_;
    ThreadPool pool_;
};

}  // namespace atasker::detail
