#pragma once
/// \file atasker.hpp
/// The umbrella header: includes every public header of atasker-cpp.

#include <atasker/error.hpp>
#include <atasker/log.hpp>
#include <atasker/priority.hpp>
#include <atasker/progress.hpp>
