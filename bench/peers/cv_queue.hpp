#pragma once
/// \file cv_queue.hpp
/// The floor: a bare FIFO of std::function behind one mutex and one condition
/// variable, served by N threads. Nothing a real pool does less than this.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace atasker_bench {

class CvQueuePool {
public:
    static constexpr const char* name = "mutex+cv queue (floor)";

    explicit CvQueuePool(unsigned threads) {
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { serve(); });
    }
    CvQueuePool(const CvQueuePool&) = delete;
    CvQueuePool& operator=(const CvQueuePool&) = delete;
    ~CvQueuePool() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_all();
        for (auto& t : threads_) t.join();
    }

    template <class F>
    void post(F&& f) {
        {
            std::lock_guard lock(mutex_);
            queue_.emplace_back(std::forward<F>(f));
        }
        ready_.notify_one();
    }

private:
    void serve() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job();
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace atasker_bench
