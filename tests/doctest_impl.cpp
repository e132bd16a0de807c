// doctest's implementation, compiled once and linked into every test
// (tests/meson.build): a test source only includes <doctest/doctest.h>.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
