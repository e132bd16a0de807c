// The smallest complete program: one task, at high priority, on a thread.
#include <atasker/atasker.hpp>
#include <fmt/core.h>

namespace at = atasker;

int main() {
    at::task_supervisor.set_thread_pool({.pool_size = 4});
    at::task_supervisor.start();
    auto task = at::background_task([](int x) { return x * 2; }, at::Priority::high)(21);
    const int answer = task.get();
    fmt::print("{}\n", answer);  // 42
    at::task_supervisor.stop();
    return answer == 42 ? 0 : 1;
}
