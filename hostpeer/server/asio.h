// asio.h: Boost.Asio for this project. Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility>, which GCC 12 in C++20 mode
// rejects; include it first.
#pragma once

#include <boost/asio.hpp>
#include <utility>
