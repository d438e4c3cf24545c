// The one Boost.Test main of every test executable (each links it from
// shmsession_test_support). Test files include <boost/test/unit_test.hpp>
// and define no BOOST_TEST_MODULE: that lets all of them share one
// precompiled Boost.Test header (test/CMakeLists.txt), which a header
// compiled with the module's main in it could not be.
#define BOOST_TEST_MODULE shmsession
#include <boost/test/unit_test.hpp>
