#pragma once
// error_of(fn): the message of the at::Error that `fn` throws, for tests
// that compare an error's whole text; fails the test when none is thrown.

#include <doctest/doctest.h>

#include <string>

#include <atasker/error.hpp>

namespace test_support {

template <class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const atasker::Error& e) {
        return e.what();
    }
    FAIL("no at::Error was thrown");
    return {};
}

}  // namespace test_support
