// Programs that must NOT compile: composing calls given what they cannot
// use. tests/compile_fail/expect_compile_error.sh builds this file once with
// ATASKER_CASE=0 (must compile) and once per case (must fail, saying why).
#include <atasker/asio.hpp>
#include <atasker/coroutine.hpp>
#include <atasker/fiber.hpp>

#include <boost/asio/use_future.hpp>

#include <coroutine>
#include <future>
#include <tuple>

namespace at = atasker;

struct NoDefault {
    explicit NoDefault(int v) : value(v) {}
    int value;
};

#if ATASKER_CASE == 0
void fine(at::Task<int> task) {
    (void)at::co_apply([](int a, int b) { return a + b; }, 2, 3);
    (void)at::co_apply([](int a, int b) { return a + b; }, std::tuple{2, 3});
    (void)at::resume_on(task, [](std::coroutine_handle<> h) { h.resume(); });
    (void)at::async_wait(task, boost::asio::use_future);
}
#elif ATASKER_CASE == 1
void wrong_argument() { (void)at::co_apply([](int x) { return x; }, "seven"); }
#elif ATASKER_CASE == 2
void not_a_scheduler(at::Task<int> task) { (void)at::resume_on(task, 42); }
#elif ATASKER_CASE == 3
void no_default(at::Task<NoDefault> task) { (void)at::async_wait(task, boost::asio::use_future); }
#endif

int main() {}
