#pragma once
/// \file export.hpp
/// ATASKER_API marks what the shared library exports; everything else is hidden.

#if defined(_WIN32)
#define ATASKER_API
#else
/// Marks a class or function the shared library exports (default visibility).
#define ATASKER_API __attribute__((visibility("default")))
#endif
