// Programs that must NOT compile: a type that cannot cross the process
// boundary, or a call whose argument does not fit the task function. tests/compile_fail/expect_compile_error.sh builds this file once
// with ATASKER_CASE=0 (must compile: proves the command line is sound) and
// once per case (must fail, naming the type).
#include <atasker/codec.hpp>
#include <atasker/mp_task.hpp>

#include <functional>
#include <string>
#include <vector>

namespace at = atasker;

struct Socket {  // no serialize(): cannot cross
    int fd = -1;
};

#if ATASKER_CASE == 0
inline const at::MpTask fine{"fine", [](const std::string& s, int n) { return s.size() + static_cast<std::size_t>(n); }};
#elif ATASKER_CASE == 1
inline const at::MpTask bad_argument{"bad_argument", [](const char* s) { return s[0]; }};
#elif ATASKER_CASE == 2
inline const at::MpTask bad_result{"bad_result", [](int fd) { return Socket{fd}; }};
#elif ATASKER_CASE == 3
void encode_a_function(at::detail::ByteWriter& out) {
    std::vector<std::function<int()>> callbacks;
    at::encode(out, callbacks);
}
#elif ATASKER_CASE == 4
inline const at::MpTask takes_int{"takes_int", [](int x) { return x; }};
void pass_a_string(at::detail::ByteWriter& out) {
    decltype(takes_int)::encode_args(out, std::string("seven"));
}
#endif

int main() {}
