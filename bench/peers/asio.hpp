#pragma once
/// \file asio.hpp
/// Boost.Asio's thread_pool: a FIFO executor with no priorities.

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace atasker_bench {

class AsioPool {
public:
    static constexpr const char* name = "asio thread_pool";

    explicit AsioPool(unsigned threads) : pool_(threads) {}
    AsioPool(const AsioPool&) = delete;
    AsioPool& operator=(const AsioPool&) = delete;
    ~AsioPool() { pool_.join(); }

    template <class F>
    void post(F&& f) {
        boost::asio::post(pool_, std::forward<F>(f));
    }

private:
    boost::asio::thread_pool pool_;
};

}  // namespace atasker_bench
