// Initializers given the wrong way must not compile (see meson.build beside
// this file): a worker process runs only an at::MpInit registered before
// at::init(), never a function made later.

#include <atasker/mp_init.hpp>
#include <atasker/pool_options.hpp>

namespace at = atasker;

inline const at::MpInit seed{"seed", [] {}};

int main() {
#if ATASKER_CASE == 0
    const at::PoolOptions ok{.pool_size = 1, .initializer = seed};
    return ok.initializer ? 0 : 1;
#elif ATASKER_CASE == 1
    const at::PoolOptions lambda{.pool_size = 1, .initializer = [] {}};
    return lambda.initializer ? 0 : 1;
#elif ATASKER_CASE == 2
    int state = 1;
    static const at::MpInit capturing{"capturing", [state] { (void)state; }};
    return 0;
#endif
}
