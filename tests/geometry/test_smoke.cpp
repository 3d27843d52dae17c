#include <crossview/geometry.hpp>
#include <doctest/doctest.h>
TEST_CASE("smoke") { CHECK(crossview::Intrinsicsd::centered(1, 3, 3).cx == 1.0); }
