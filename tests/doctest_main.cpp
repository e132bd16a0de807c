// The main() of tests that need nothing before doctest runs; a test that
// must (at::init() forks the zygote before any thread starts) has its own.
#include <doctest/doctest.h>

int main(int argc, char** argv) { return doctest::Context(argc, argv).run(); }
